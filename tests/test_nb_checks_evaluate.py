"""Checks moved out of `nbs/07_evaluate.ipynb`, where each function keeps one example: batch composition of greedy
answers, final steps and refused references in `grade`, the layout of `score_table`, the paper's Table 1 Avg, and the
shapes of the paper's tables."""
import numpy as np, pandas as pd
from fastcore.test import test_close, test_eq, test_fail
for _f in (test_close, test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.data import FIELDS, load_rlvr_dataset
from rlvr_nb.evaluate import PAPER_COLUMNS, generate_answers, grade, paper_table, score_table
from rlvr_nb.toy import toy_model, toy_tokenizer
from rlvr_nb.verify import RuleVerifier

def _ds():
    return load_rlvr_dataset([{'question': 'What is 2 + 3?', 'reference': '5', 'subject': 'Mathematics'},
                              {'question': 'Name the capital of France, please.', 'reference': 'Paris', 'subject': 'History'},
                              {'question': 'Which gas do plants absorb?', 'reference': 'CO2', 'subject': 'Biology'}])

def test_greedy_answers_keep_order_and_do_not_depend_on_batches():
    _tok = toy_tokenizer(); _tiny = toy_model(_tok, seed=0); ds = _ds()
    ans = generate_answers(_tiny, ds, tokenizer=_tok, batch_size=2, max_new_tokens=4, progress=False)
    test_eq(ans['question'], ds['question'])   # order kept despite length sorting
    ans2 = generate_answers(_tiny, ds, tokenizer=_tok, batch_size=3, max_new_tokens=4, progress=False)
    test_eq(ans2['response'], ans['response'])   # greedy: batch composition does not change answers

def test_grade_final_steps_and_missing_references():
    answers = _ds().to_pandas().assign(response=['Let me add.\nTherefore, the answer is 5', 'Therefore, the answer is Lyon', 'CO2, of course\n'],
                                       truncated=[False, False, True])
    g = grade(answers, RuleVerifier('contains'), progress=False)
    test_eq(g.final_step.tolist(), ['Therefore, the answer is 5', 'Therefore, the answer is Lyon', 'CO2, of course'])
    test_fail(lambda: grade(answers.assign(reference=['5', None, ' ']), RuleVerifier('contains')), contains='rows [1, 2]')

def test_score_table_layout():
    df = pd.DataFrame({'field': ['STEM'] * 8 + ['Humanities'] * 2, 'correct': [1] * 6 + [0] * 2 + [0, 0]})
    t = score_table(df)
    test_eq(list(t.columns), ['STEM', 'Humanities', 'Avg'])
    test_eq(list(t.index), ['accuracy', 'ci_low', 'ci_high', 'correct', 'n', 'failed'])

def test_paper_table_avg_is_over_items():
    t1 = paper_table(1)
    base = t1[t1.method == 'Base (Qwen2.5-7B)'].iloc[0]
    fields = [base[PAPER_COLUMNS[f]] for f in FIELDS]
    test_close(np.mean(fields), 14.9, eps=0.01); test_eq(base.ms_avg, 15.0)    # Avg ≠ mean of fields: weighted by items
    test_fail(lambda: paper_table(4), contains='1, 2 and 3')

def test_real_answers_from_a_model_spec():
    "SmolLM2-135M-Instruct (a named model, skipped where it is not installed) answers four short MMLU questions."
    from pathlib import Path
    import pytest
    from transformers.utils import logging as hf_logging
    from rlvr_nb.data import read_mmlu
    from rlvr_nb.models import named_model_available
    mmlu_zip = Path(__file__).resolve().parent.parent.parent / 'shared' / 'data' / 'mmlu.zip'
    if not (named_model_available('smollm2-135m-instruct') and mmlu_zip.exists()): pytest.skip('SmolLM2-135M-Instruct or the MMLU zip is missing')
    hf_logging.disable_progress_bar()
    recs = [r for r in read_mmlu(mmlu_zip, 'test')[0] if len(r['question']) < 90][::400][:4]   # four subjects
    real = generate_answers('smollm2-135m-instruct', load_rlvr_dataset(recs), max_new_tokens=48, batch_size=4, progress=False)
    real_grades = grade(real, RuleVerifier('contains'), progress=False)
    test_eq(len(real_grades), 4)
    assert not any('<|im_' in r for r in real_grades.response)   # generation stopped at the end of the turn, nothing leaked


def test_toy_world_end_to_end_oracle_and_rule_grades(tmp_path):
    "The pretrained toy policy answers 200 held-out questions; the oracle grades them, then the saved answers are regraded by the string rule."
    import pandas as pd
    from rlvr_nb.evaluate import generate_answers, grade, grade_summary, score_table
    from rlvr_nb.toy import ToyOracle, make_toy_dataset, pretrain_toy_policy
    from rlvr_nb.verify import RuleVerifier
    policy, ptok = pretrain_toy_policy()
    test_set = make_toy_dataset(200, seed=1, split='test')
    toy_answers = generate_answers(policy, test_set, tokenizer=ptok, batch_size=50, max_new_tokens=48, progress=False)
    toy_grades = grade(toy_answers, ToyOracle(), output=tmp_path / 'grades.parquet', progress=False)
    assert len(pd.read_parquet(tmp_path / 'grades.parquet')) == 200
    summary = grade_summary(toy_grades)
    assert summary['truncated'] < 20 and 0.1 < summary['correct'] / summary['n'] < 0.95   # a moderate, not random, policy
    rule_grades = grade(pd.read_parquet(tmp_path / 'grades.parquet')[['question', 'reference', 'response', 'field', 'subject', 'level', 'domain']],
                        RuleVerifier('contains'), progress=False)
    assert rule_grades.correct.sum() <= toy_grades.correct.sum()   # the string rule misses surface forms the oracle accepts
    assert set(score_table(toy_grades, by='domain').columns) == set(score_table(rule_grades, by='domain').columns)

def test_paper_table_shapes():
    test_eq([paper_table(i).shape for i in (1, 2, 3)], [(22, 13), (10, 12), (2, 3)])
