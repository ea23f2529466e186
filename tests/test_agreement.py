"Property and edge-case tests of rlvr_nb.agreement (Cohen's κ against scikit-learn, majority voting, bootstrap)."
import math, warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import cohen_kappa_score

from rlvr_nb.agreement import majority_vote, cohen_kappa, agreement_report, kappa_vs_m, paper_kappa


def _sk(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return cohen_kappa_score(a, b)


pairs01 = st.integers(1, 60).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 1), min_size=n, max_size=n),
                                                         st.lists(st.integers(0, 1), min_size=n, max_size=n)))
pairs_multi = st.integers(1, 40).flatmap(lambda n: st.tuples(st.lists(st.sampled_from('abcd'), min_size=n, max_size=n),
                                                             st.lists(st.sampled_from('abcd'), min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(pairs01)
def test_kappa_equals_sklearn_binary(ab):
    a, b = ab
    ref = _sk(a, b)
    k = cohen_kappa(a, b)
    assert math.isfinite(k)
    if math.isnan(ref):  # sklearn's undefined case: both raters constant and equal
        assert len(set(a)) == 1 and a == b and k == 1.0
    else:
        assert k == pytest.approx(ref, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(pairs_multi)
def test_kappa_equals_sklearn_multiclass(ab):
    a, b = ab
    ref = _sk(a, b)
    k = cohen_kappa(a, b)
    if math.isnan(ref): assert k == 1.0 and a == b
    else: assert k == pytest.approx(ref, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(pairs01)
def test_kappa_symmetric_and_bounded(ab):
    a, b = ab
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa(b, a), abs=1e-12)
    assert -1 - 1e-12 <= cohen_kappa(a, b) <= 1 + 1e-12
    assert cohen_kappa(a, a) == pytest.approx(1.0)


def test_kappa_constant_raters():
    assert cohen_kappa([1] * 5, [1] * 5) == 1.0          # sklearn: nan
    assert math.isnan(_sk([1] * 5, [1] * 5))
    assert cohen_kappa([0] * 5, [0] * 5) == 1.0
    assert cohen_kappa([0] * 5, [1] * 5) == 0.0 == _sk([0] * 5, [1] * 5)
    assert cohen_kappa([1] * 4, [1, 1, 0, 1]) == pytest.approx(_sk([1] * 4, [1, 1, 0, 1]))  # one constant rater: 0


def test_kappa_bad_input():
    with pytest.raises(ValueError, match='different numbers'): cohen_kappa([1, 0], [1])
    with pytest.raises(ValueError, match='no items'): cohen_kappa([], [])


def test_majority_vote_ties_and_odd_m():
    votes = np.array([[1, 1, 0, 0], [0, 1, 1, 0]])
    assert majority_vote(votes).tolist() == [1, 1, 1, 0]            # 1–1 ties are YES
    votes4 = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    assert majority_vote(votes4).tolist() == [1, 1, 0, 0]           # 2 of 4 → YES, 1 of 4 → NO
    assert majority_vote(np.array([[1, 0], [0, 0], [1, 0]])).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r'\(1, 2\)'): majority_vote([[0, 1, 1], [1, 0, 5]])
    with pytest.raises(ValueError, match='0/1'): majority_vote([[0, None]])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 7).flatmap(lambda m: st.lists(st.lists(st.integers(0, 1), min_size=m, max_size=m), min_size=1, max_size=20)))
def test_majority_vote_matches_definition(cols):
    votes = np.array(cols).T  # (m, n)
    m = votes.shape[0]
    expect = [1 if sum(c) >= m / 2 else 0 for c in cols]
    assert majority_vote(votes).tolist() == expect


def _judges(n=400, seed=1):
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.55).astype(int)
    flip = lambda p: np.where(rng.random(n) < p, 1 - truth, truth)
    groups = rng.choice(['x', 'y', 'z'], size=n)
    return {'A': flip(0.05), 'B': flip(0.1), 'C': flip(0.3)}, groups


def test_report_ci_contains_point_and_reproducible():
    labels, groups = _judges()
    rep = agreement_report(labels, groups={'field': groups}, bootstrap=400, seed=3)
    assert len(rep) == 3 * (1 + 3)                       # 3 pairs, overall + 3 groups
    assert (rep.kappa_lo <= rep.kappa).all() and (rep.kappa <= rep.kappa_hi).all()
    assert (rep.agreement_lo <= rep.agreement).all() and (rep.agreement <= rep.agreement_hi).all()
    pd.testing.assert_frame_equal(rep, agreement_report(labels, groups={'field': groups}, bootstrap=400, seed=3))
    other = agreement_report(labels, groups={'field': groups}, bootstrap=400, seed=4)
    assert not np.allclose(rep.kappa_lo, other.kappa_lo)   # the seed matters
    np.testing.assert_allclose(rep.kappa, other.kappa)     # point estimates do not depend on it
    # the point estimates are the sklearn ones, and the best pair is the two least noisy judges
    for _, r in rep[rep.by == 'all'].iterrows():
        assert r.kappa == pytest.approx(_sk(labels[r.judge_a], labels[r.judge_b]), abs=1e-12)
    allr = rep[rep.by == 'all'].set_index(['judge_a', 'judge_b'])
    assert allr.kappa.idxmax() == ('A', 'B')
    # group rows count their own items
    g = rep[(rep.by == 'field') & (rep.judge_a == 'A') & (rep.judge_b == 'B')].set_index('group')
    for val in 'xyz': assert g.loc[val, 'n'] == (groups == val).sum()


def test_report_votes_are_majority_voted_and_validated():
    labels, groups = _judges(n=50)
    votes = np.stack([labels['A'], labels['A'], 1 - labels['A']])
    rep = agreement_report({'A': labels['A'], 'V': votes}, bootstrap=0)
    assert rep.kappa.item() == 1.0 and 'kappa_lo' not in rep
    with pytest.raises(ValueError, match='different numbers'): agreement_report({'A': labels['A'], 'B': labels['B'][:10]})
    with pytest.raises(ValueError, match="judge 'B'"): agreement_report({'A': [0, 1], 'B': [0, 2]})
    with pytest.raises(ValueError, match='two judges'): agreement_report({'A': [0, 1]})
    with pytest.raises(ValueError, match='entries for'): agreement_report({'A': [0, 1], 'B': [0, 1]}, groups=['g'])


def test_kappa_vs_m_and_paper():
    rng = np.random.default_rng(0)
    truth = (rng.random(600) < 0.5).astype(int)
    noisy = lambda p, m: np.stack([np.where(rng.random(600) < p, 1 - truth, truth) for _ in range(m)])
    kv = kappa_vs_m(noisy(0.2, 9), noisy(0.2, 9), ms=[1, 3, 9])
    k = kv.set_index('m').kappa
    assert k[1] < k[3] < k[9]                            # voting removes independent sampling noise
    with pytest.raises(ValueError, match='1..9'): kappa_vs_m(noisy(0.2, 9), noisy(0.2, 9), ms=[10])
    pk = paper_kappa()
    assert list(pk.columns) == ['dataset', 'level', 'kappa_m1', 'kappa_m10']
    assert pk.set_index(['dataset', 'level']).loc[('math', 'average'), 'kappa_m1'] == 0.864
