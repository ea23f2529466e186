"""Checks moved out of `nbs/05a_distill.ipynb`, where each function keeps one example: the former homes of names, the
probe's split and refusal, the spellings `parse_verdict` reads, the SFT rows' prompt, fields, dedupe, balance and
refusals, negatives spread over keys and never paired with a reference they contain, both names of one setting, the
audit's F1, per-field accuracy and ECE, `zero_division` when asked, and deterministic, disjoint splits."""
import warnings
from collections import Counter

from datasets import Dataset
from fastcore.test import test_close, test_eq, test_fail, test_is
for _f in (test_close, test_eq, test_fail, test_is): _f.__test__ = False   # fastcore's helpers, not tests

import rlvr_nb.distill as D
from rlvr_nb.distill import (HELDOUT_PROBE_KEYS, _AlwaysYes, augment_negatives, evaluate_verifier,
                             expected_calibration_error, label_balance, master_key_probe, split_by_question,
                             train_verifier, verdict_sft_dataset)
from rlvr_nb.verify import RuleVerifier

EXPL = [dict(question='What is 2+2?', reference='4', response='2+2=4\nTherefore, the answer is 4', verdict='YES', field='STEM'),
        dict(question='What is 2+2?', reference='4', response='Adding.\nTherefore, the answer is 4', verdict='YES', field='STEM'),
        dict(question='What is 2+2?', reference='4', response='Therefore, the answer is 5', verdict='NO', field='STEM'),
        dict(question='Capital of France?', reference='Paris', response='It is Paris, I think', verdict='YES', field='Humanities'),
        dict(question='Capital of France?', reference='Paris', response='It is Paris, I think', verdict='NO', field='Humanities'),
        dict(question='Capital of France?', reference='Paris', response='Lyon', verdict='maybe', field='Humanities'),
        dict(question='Capital of France?', reference='Paris', response='Thought Process:', verdict=0, field='Humanities')]

def test_probe_keys_and_unknown_names():
    test_is(D.PROBE_KEYS, HELDOUT_PROBE_KEYS)
    test_fail(lambda: D.no_such_name, contains='no_such_name')

def test_probe_split_and_refusal():
    qs, refs = ['What is 2+2?', 'Name the gas plants absorb.'], ['4', 'carbon dioxide']
    r = master_key_probe(RuleVerifier('contains'), qs, refs, keys=HELDOUT_PROBE_KEYS)
    test_eq(set(r.per_key.split), {'probe'})
    test_fail(lambda: master_key_probe(_AlwaysYes(), ['q', ''], ['r', 'r']), contains="'question': rows [1]")

def test_verdict_sft_rows_dedupe_balance_and_refusals():
    expl = EXPL
    sft = verdict_sft_dataset(expl, verbose=False)
    test_eq([m['role'] for m in sft[0]['prompt']], ['system', 'user'])
    assert 'Therefore, the answer is 4' in sft[0]['prompt'][1]['content'] and '2+2=4' not in sft[0]['prompt'][1]['content']
    test_eq(sft['field'], ['STEM', 'STEM', 'Humanities'])
    test_eq(len(verdict_sft_dataset(expl, dedupe=False, verbose=False)), 6)
    test_eq(label_balance(verdict_sft_dataset(expl, balance='undersample', verbose=False))['yes_share'], 0.5)
    test_fail(lambda: verdict_sft_dataset([dict(question='q', reference='r', response='a')]), contains="missing column(s) ['verdict']")
    test_fail(lambda: verdict_sft_dataset([dict(question='q', reference='', response='a', verdict='YES')]), contains="'reference': rows [0]")

def test_augment_negatives_marks_rows_and_skips_keys_holding_the_reference():
    sft = verdict_sft_dataset(EXPL, verbose=False)
    aug = augment_negatives(sft, rate=2.0, keys=['Thought process:', 'Solución'], seed=1, verbose=False)
    test_eq(aug['augmented'], [False] * 3 + [True] * 6)
    assert 'Solución' in aug[-1]['prompt'][1]['content'] or 'Thought process:' in aug[-1]['prompt'][1]['content']
    # a key that contains the reference is never paired with it
    only = verdict_sft_dataset([dict(question='Say yes.', reference='YES', response='YES', verdict='YES')], verbose=False)
    test_eq(len(augment_negatives(only, keys=['YES'], rate=3, verbose=False)), 1)

# teacher-labelled rows of two fields (the notebook's audit example); the last one has no label
LAB = [dict(question='What is 2+2?', reference='4', response='So 4', verdict='YES', field='STEM'),
       dict(question='What is 2+2?', reference='4', response='So 5', verdict='NO', field='STEM'),
       dict(question='Capital?', reference='Paris', response='Paris', verdict='YES', field='Humanities'),
       dict(question='Capital?', reference='Paris', response='It is Paris, I think', verdict='NO', field='Humanities'),
       dict(question='Capital?', reference='Paris', response='Lyon', verdict='NO', field='Humanities'),
       dict(question='Capital?', reference='Paris', response='Rome', verdict=None, field='Humanities')]

def test_train_verifier_refuses_both_names():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        test_fail(lambda: train_verifier(None, Dataset.from_list([{'prompt': []}]), output_dir='unused', lr=1e-3, learning_rate=1e-4), contains='got both')

def test_evaluate_verifier_f1_per_field_and_ece():
    rep = evaluate_verifier(RuleVerifier('contains'), LAB)
    test_close(rep.overall['f1'], 2 * 2 / (2 * 2 + 1 + 0))
    test_eq(rep.per_field.loc['STEM', 'accuracy'], 1.0)
    test_close(expected_calibration_error([0.1, 0.9, 0.65, 0.75], [0, 1, 1, 0], bins=10), (0.1 + 0.1 + 0.35 + 0.75) / 4)

def test_split_by_question_keeps_rows_and_is_deterministic():
    rows = [dict(question=f'q{i % 7}', reference='r', response='x', verdict='YES') for i in range(70)]
    tr, ho = split_by_question(rows, heldout=0.3, seed=1)
    test_eq(len(tr) + len(ho), 70)
    test_eq(split_by_question(rows, heldout=0.3, seed=1)[1].to_dict(), ho.to_dict())   # deterministic

def test_recipes_keep_their_former_home():
    from rlvr_nb.toy import recipes
    test_is(D.toy_student, recipes.toy_student)

def test_parse_verdict_spellings():
    from rlvr_nb.distill import parse_verdict
    from rlvr_nb.verify import Verdict
    test_eq([parse_verdict(v) for v in ['YES', ' no ', '**YES**', 'Yes.', True, 0, 1.0, Verdict('NO'), Verdict(None),
                                          'maybe', None, float('nan'), 2, 'YESNO']],
            ['YES', 'NO', 'YES', 'YES', 'YES', 'NO', 'YES', 'NO', None, None, None, None, None, None])

def test_negatives_spread_over_keys_and_the_audit_ece():
    sft = verdict_sft_dataset(EXPL, verbose=False)
    aug = augment_negatives(sft, rate=2.0, keys=['Thought process:', 'Solución'], seed=1, verbose=False)
    test_eq(Counter(aug['final_step'][3:]), Counter({'Thought process:': 3, 'Solución': 3}))
    rep = evaluate_verifier(RuleVerifier('contains'), LAB)
    test_eq(rep.overall['ece'], 0.2)   # confident everywhere, wrong on one row of five

def test_binary_metrics_zero_division_when_asked_and_an_exact_split_is_disjoint():
    from rlvr_nb.distill import binary_metrics
    test_eq(binary_metrics([0, 0], [0, 0], zero_division=1.0)['f1'], 1.0)       # scikit-learn's option, when asked for
    rows = [dict(question=f'q{i % 7}', reference='r', response='x', verdict='YES') for i in range(70)]
    tr, ho = split_by_question(rows, heldout=0.3, seed=1, exact=True)   # exactly round(0.3 × 7) = 2 of the 7 questions
    test_eq(set(tr.question) & set(ho.question), set())
