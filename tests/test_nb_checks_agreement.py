"""Checks moved out of `nbs/04_agreement.ipynb`, where each function keeps one example: single samples and refusals of
`majority_vote`, κ's edge cases, and a reproducible, grouped `agreement_report`."""
import numpy as np, pandas as pd
from fastcore.test import test_close, test_eq, test_fail
for _f in (test_close, test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.agreement import agreement_report, cohen_kappa, majority_vote

def test_majority_vote_single_sample_bools_and_refusal():
    test_eq(majority_vote([1, 0, 1]), [1, 0, 1])                            # one sample: unchanged
    test_eq(majority_vote(np.array([[True, False]])), [1, 0])
    test_fail(lambda: majority_vote([[1, 2, 0]]), contains='(0, 1)')         # names the sample and item

def test_cohen_kappa_edge_cases():
    test_eq(cohen_kappa([0, 0, 0], [1, 1, 1]), 0.0)    # sklearn: 0.0
    test_eq(cohen_kappa(['YES', 'NO'], ['YES', 'NO']), 1.0)
    test_fail(lambda: cohen_kappa([1, 0], [1]), contains='different numbers')

def test_agreement_report_is_reproducible_and_grouped():
    rng = np.random.default_rng(0)
    truth = (rng.random(2000) < 0.6).astype(int)
    flip = lambda p: np.where(rng.random(truth.size) < p, 1 - truth, truth)
    A, B = flip(0.05), flip(0.15)
    field = rng.choice(['STEM', 'Humanities'], size=truth.size)
    rep = agreement_report({'A': A, 'B': B}, groups={'field': field}, bootstrap=500, seed=0)
    test_eq(rep, agreement_report({'A': A, 'B': B}, groups={'field': field}, bootstrap=500, seed=0))  # reproducible
    test_eq(list(rep.group), ['all'] + list(pd.unique(field)))
    test_fail(lambda: agreement_report({'A': A, 'B': B[:10]}), contains='different numbers')
