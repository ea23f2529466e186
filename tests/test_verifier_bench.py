"""The verifier bench (rlvr_nb.verifier_bench, `rlvr bench-verifier`): readers of each layout on hand-made files, the
metrics against scikit-learn, resumable verdicts with per-item seeds, cascades from their parts, the CLI end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

from rlvr_nb.data import DataError
from rlvr_nb.distill import binary_metrics
from rlvr_nb.reward import CascadeVerifier
from rlvr_nb.verify import RuleVerifier, Verdict, Verifier
from rlvr_nb.verify_sets import VERIFY_COLUMNS, label_counts, verification_set
from rlvr_nb.verifier_bench import (VerdictCache, bench_metrics, bench_verifiers, item_key, judge_cascade, judge_items,
                                    master_key_set, published_numbers, verifier_from_spec, verifier_identity)

SETS = Path(__file__).parent / 'data' / 'verify_sets'
ROOT = Path(__file__).resolve().parents[1]


# --- readers: one hand-made file per layout ---------------------------------------------------------------------------
@pytest.mark.parametrize('spec,counts,first', [
    ('hardverify.json', {'n': 6, 'YES': 3, 'NO': 3, 'invalid': 0}, ('6', 'A hexagon has six sides.', 'YES', 'fn_output')),
    ('verifybench.jsonl', {'n': 6, 'YES': 3, 'NO': 3, 'invalid': 0}, ('Na', 'Sodium is written Na.', 'YES', 'True')),
    ('verifierbench.jsonl', {'n': 6, 'YES': 2, 'NO': 4, 'invalid': 2}, ('photosynthesis', 'Photosynthesis.', 'YES', 'A')),
])
def test_reader_per_layout(spec, counts, first):
    ds = verification_set(SETS / spec)
    assert ds.column_names == list(VERIFY_COLUMNS) and label_counts(ds) == counts
    rows = ds.to_list()
    assert any((r['reference'], r['response'], r['label'], r['raw_label']) == first for r in rows)
    assert all(r['label'] in ('YES', 'NO') for r in rows)
    if spec == 'verifierbench.jsonl':
        assert [r['label'] for r in rows if r['raw_label'] == 'C'] == ['NO', 'NO']           # invalid counts as NO
        assert {r['domain'] for r in rows} == {'science', 'knowledge'} and {r['source'] for r in rows} == {'hand-made'}


def test_mmlu_set_from_csv_files():
    ds = verification_set(f'mmlu:{SETS / "mmlu"}', wrong_per_question=2)
    rows = ds.to_list()
    # 8 questions, one ("All of the above") left out; each kept one: the correct option + 2 others
    assert label_counts(ds) == {'n': 21, 'YES': 7, 'NO': 14, 'invalid': 0}
    assert not any('above' in r['reference'] or 'above' in r['response'] for r in rows)
    yes = [r for r in rows if r['label'] == 'YES']
    assert all(r['reference'] in r['response'].splitlines()[-1] for r in yes)
    assert {r['source'] for r in rows} == {'mmlu/astronomy', 'mmlu/high_school_chemistry'} and {r['domain'] for r in rows} == {'STEM'}
    for r in rows:
        if r['label'] == 'NO': assert r['reference'] not in r['response']
    a, b = verification_set(f'mmlu:{SETS / "mmlu"}', limit=3, seed=1), verification_set(f'mmlu:{SETS / "mmlu"}', limit=3, seed=1)
    assert a.to_list() == b.to_list() and len({r['question'] for r in a.to_list()}) == 3


def test_math500_set_rules_and_labels():
    ds = verification_set(f'math500:{SETS / "math500.jsonl"}', per_problem=2, seed=0)
    rows = ds.to_list()
    assert label_counts(ds)['YES'] == 8 and label_counts(ds)['NO'] == 8
    assert all(r['raw_label'].split(':')[0] == ('correct' if r['label'] == 'YES' else 'wrong') for r in rows)
    # the guarded math rule never accepts a wrong rewrite, and accepts most correct ones
    v = RuleVerifier('math').judge([r['question'] for r in rows], [r['response'] for r in rows], [r['reference'] for r in rows])
    assert not any(x.label == 'YES' for x, r in zip(v, rows) if r['label'] == 'NO')
    assert sum(x.label == 'YES' for x, r in zip(v, rows) if r['label'] == 'YES') >= 6


def test_bad_sets_are_named(tmp_path):
    (tmp_path / 'bad.jsonl').write_text('{"question": "q", "answer": "a", "completion": "c", "label": "perhaps"}\n')
    with pytest.raises(DataError, match="row 0: label 'perhaps'"): verification_set(tmp_path / 'bad.jsonl')
    (tmp_path / 'm' / 'data' / 'test').mkdir(parents=True)
    (tmp_path / 'm' / 'data' / 'test' / 'astronomy_test.csv').write_text('"q",a,b,c,d,B\n"q2",a,b,c,E\n')
    with pytest.raises(DataError, match=r'row 1 \(.*astronomy_test\.csv\): 5 fields'): verification_set(f'mmlu:{tmp_path / "m"}')
    with pytest.raises(DataError, match='not found'): verification_set(tmp_path / 'missing.json')


# --- metrics ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('seed', range(25))
def test_metrics_equal_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.integers(0, 2, n) if seed % 5 else np.zeros(n, dtype=int)          # every fifth draw: no positives at all
    p = np.clip(rng.random(n) * 0.8 + y * rng.random() * 0.4, 0, 1).round(int(rng.integers(1, 4)))   # rounding makes ties
    pred = (p >= 0.5).astype(int) if seed % 7 else np.zeros(n, dtype=int)     # every seventh: never predicts YES
    for zd in (0.0, 1.0):
        m = binary_metrics(y, pred, p, zero_division=zd)
        assert m['accuracy'] == pytest.approx(accuracy_score(y, pred))
        assert m['precision'] == pytest.approx(precision_score(y, pred, zero_division=zd))
        assert m['recall'] == pytest.approx(recall_score(y, pred, zero_division=zd))
        assert m['f1'] == pytest.approx(f1_score(y, pred, zero_division=zd))
        tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert m['fpr'] == pytest.approx(fp / (fp + tn) if fp + tn else zd)
        if 0 < y.sum() < n: assert m['auc'] == pytest.approx(roc_auc_score(y, p))
        else: assert np.isnan(m['auc'])
    assert binary_metrics(np.zeros(4, int), np.zeros(4, int))['f1'] == 0.0       # no positives: not a perfect score


def test_bench_metrics_parse_failures_and_invalid():
    j = pd.DataFrame({'label': ['YES', None, 'NO', None, 'YES'], 'p_yes': [0.9, 0.3, 0.2, 0.0, 0.7], 'p_no': [0.1, 0.3, 0.8, 0.0, 0.3],
                      'error': [None, None, None, 'timeout', None], 'sec': [0.1] * 5, 'model_call': [None] * 5})
    m = bench_metrics(['YES', 'YES', 'NO', 'NO', 'NO'], j, ['A', 'A', 'B', 'B', 'C'])
    assert m['parse_failures'] == pytest.approx(0.2) and m['judge_errors'] == pytest.approx(0.2)
    assert m['recall'] == 0.5 and m['fpr'] == pytest.approx(1 / 3) and m['invalid_paid'] == 1.0
    assert m['judgments_per_s'] == pytest.approx(10.0) and np.isnan(m['judge_calls_saved'])


# --- specs, identities, caches ----------------------------------------------------------------------------------------
def test_specs_and_identities():
    assert verifier_from_spec('math').name == 'math' and verifier_from_spec('math-verify').name == 'math-verify'
    c = verifier_from_spec('cascade:contains+toy-oracle@0.1')
    assert isinstance(c, CascadeVerifier) and c.model.noise == 0.1
    for bad, msg in [('regex', 'regex'), ('cascade:math', r"cascade:<rule>\+<judge spec>"), ('toy-oracle@2', 'noise rate'),
                     ('openai:m@judge:80', 'http://host:port/v1'), ('', 'non-empty')]:
        with pytest.raises(DataError, match=msg): verifier_from_spec(bad)
    a, b = verifier_identity('math', verifier_from_spec('math')), verifier_identity('contains', verifier_from_spec('contains'))
    assert a != b and a['code'] == b['code']
    with pytest.raises(TypeError, match='bench_identity'): verifier_identity('x', Verifier())


class Noisy(Verifier):
    "Verdicts with P(YES) from the response's length, so sampling matters; counts what it was asked."
    bench_identity = 'noisy-v1'
    def __init__(self): self.asked = []
    def judge(self, qs, rs, refs):
        self.asked += list(rs)
        return [Verdict('YES' if len(r) % 3 else 'NO', (len(r) % 10) / 10, 1 - (len(r) % 10) / 10) for r in rs]


def test_sampled_verdicts_use_per_item_seeds(tmp_path):
    qs, refs = ['q'] * 40, ['r'] * 40
    rs = [f'Therefore, the answer is {"x" * i}' for i in range(40)]
    one = judge_items(Noisy(), qs, rs, refs, sample=True, seed=3, batch_size=40)
    small = judge_items(Noisy(), qs[::-1], rs[::-1], refs, sample=True, seed=3, batch_size=7)
    assert list(one.label) == list(small.label[::-1])                  # the same verdict per item, whatever the batch
    other = judge_items(Noisy(), qs, rs, refs, sample=True, seed=4, batch_size=40)
    assert list(one.label) != list(other.label)
    greedy = judge_items(Noisy(), qs, rs, refs)
    assert list(greedy.label) != list(one.label)


def test_cache_resumes_and_skips_a_torn_line(tmp_path):
    qs, refs = [f'q{i}' for i in range(9)], ['7'] * 9
    rs = [f'Therefore, the answer is {i}' for i in range(9)]
    v = Noisy()
    first = judge_items(v, qs[:5], rs[:5], refs[:5], cache=VerdictCache(tmp_path, {'custom': 'n'}))
    with open(tmp_path / f"{VerdictCache(tmp_path, {'custom': 'n'}).hash}.jsonl", 'a') as f: f.write('{"key": "tor')   # a crash mid-line
    v2 = Noisy()
    again = judge_items(v2, qs, rs, refs, cache=VerdictCache(tmp_path, {'custom': 'n'}), batch_size=3)
    assert v2.asked == rs[5:] and list(again.label[:5]) == list(first.label)
    assert len(VerdictCache(tmp_path, {'custom': 'n'})) == 9
    assert item_key('q', 'r', 'a') != item_key('q', 'a', 'r')


def test_cascade_from_parts_equals_cascade_verifier(tmp_path):
    ds = verification_set(f'math500:{SETS / "math500.jsonl"}')
    qs, rs, refs = ds['question'], ds['response'], ds['reference']
    rs = list(rs[:-1]) + ['']                                            # a response with no final step
    judge = RuleVerifier('contains')                                     # a stand-in judge with a different opinion
    cv = CascadeVerifier(RuleVerifier('math'), judge)
    direct = cv.judge(list(qs), rs, list(refs))
    parts = judge_cascade(cv, list(qs), rs, list(refs), rule_cache=VerdictCache(tmp_path, {'custom': 'rule'}),
                          judge_cache=VerdictCache(tmp_path, {'custom': 'judge'}))
    assert [None if not isinstance(l, str) else l for l in parts.label] == [v.label for v in direct]
    assert int(parts.model_call.sum()) == cv.stats['model_judged']


def test_bench_verifiers_tables_probe_and_files(tmp_path):
    res = bench_verifiers(['contains', 'math', 'cascade:math+contains'], [f'mmlu:{SETS / "mmlu"}', f'math500:{SETS / "math500.jsonl"}'],
                          probe_keys=6, probe_questions=4, output_dir=tmp_path, progress=False)
    t = res.table.set_index(['verifier', 'set'])
    assert set(t.index) == {(v, s) for v in ('contains', 'math', 'cascade:math+contains') for s in ('mmlu', 'math500')}
    assert t.loc[('contains', 'mmlu'), 'recall'] == 1.0 and t.loc[('math', 'math500'), 'fpr'] == 0.0
    assert t.loc[('math', 'mmlu'), 'parse_failures'] > 0.5                      # words are not math: "cannot tell"
    assert 0 < t.loc[('cascade:math+contains', 'math500'), 'judge_calls_saved'] < 1
    assert (res.table.master_key_fpr >= 0).all() and len(res.probe) == 3 * 6
    mk = master_key_set([verification_set(f'mmlu:{SETS / "mmlu"}')], n_questions=4)
    assert len(mk) == 48 * 4 and set(mk['label']) == {'NO'}
    for f in ('bench_verifiers.json', 'bench_verifiers.md', 'bench_verifiers.png'): assert (tmp_path / f).stat().st_size > 0
    js = json.loads((tmp_path / 'bench_verifiers.json').read_text())
    assert len(js['table']) == 6 and js['settings']['probe'] == '6 keys × 4 questions'
    assert 'Published numbers' in (tmp_path / 'bench_verifiers.md').read_text()
    # the cascade reused the rule's and the judge's caches: three identities, not four
    assert len(list((tmp_path / 'verdicts').glob('*.jsonl'))) == 2


def test_published_numbers_are_marked():
    p = published_numbers(['tests/VerifierBench.jsonl'])
    assert set(p.benchmark) == {'VerifierBench', 'VerifyBench', 'VerifyBench-Hard'}
    assert (p[p.benchmark == 'VerifierBench'].on_our_set == 'yes').all() and (p[p.benchmark != 'VerifierBench'].on_our_set != 'yes').all()
    rm = p[(p.benchmark == 'VerifierBench') & (p.subset == 'average') & p.verifier.str.contains('RM-7B')]
    assert rm.value.tolist() == [67.1] and 'maps C' in rm.note.iloc[0]
    vb = p[(p.benchmark == 'VerifyBench') & (p.verifier == 'math-verify')]
    assert vb.value.tolist() == [45.90] and '2505.15801' in vb.source.iloc[0]


# --- the CLI ----------------------------------------------------------------------------------------------------------
def _rlvr(*args, cwd=None):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    return subprocess.run([sys.executable, '-c', 'import sys; from rlvr_nb.cli import main; sys.exit(main())', *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_cli_bench_verifier_on_mmlu_with_two_rules(tmp_path):
    shared = ROOT.parent / 'shared' / 'data' / 'mmlu.zip'
    mmlu = shared if shared.exists() else SETS / 'mmlu'
    out = tmp_path / 'bench'
    args = ['bench-verifier', '--verifier', 'contains', '--verifier', 'jaccard', '--data', f'mmlu:{mmlu}', '--limit', '30',
            '--probe_keys', '8', '--probe_questions', '3', '--output_dir', str(out), '--quiet']
    r = _rlvr(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '| contains | mmlu |' in r.stdout and '| jaccard | mmlu |' in r.stdout and 'Published numbers' in r.stdout
    js = json.loads((out / 'bench_verifiers.json').read_text())
    assert {row['verifier'] for row in js['table']} == {'contains', 'jaccard'}
    assert all(row['n'] == 60 or mmlu == SETS / 'mmlu' for row in js['table'])
    caches = {p: p.read_bytes() for p in (out / 'verdicts').glob('*.jsonl')}
    r2 = _rlvr(*args)                                                       # a rerun resumes: nothing is judged again
    assert r2.returncode == 0 and {p: p.read_bytes() for p in (out / 'verdicts').glob('*.jsonl')} == caches
    assert json.loads((out / 'bench_verifiers.json').read_text())['table'][0]['accuracy'] == js['table'][0]['accuracy']


def test_cli_bench_verifier_refuses_bad_input(tmp_path):
    r = _rlvr('bench-verifier', '--verifier', 'cascade:regex+math', '--data', f'mmlu:{SETS / "mmlu"}', '--output_dir', str(tmp_path / 'o'))
    assert r.returncode == 2 and "unknown rule 'regex'" in r.stderr and 'Traceback' not in r.stderr
    r = _rlvr('bench-verifier', '--verifier', 'contians', '--data', f'mmlu:{SETS / "mmlu"}', '--output_dir', str(tmp_path / 'o'))
    assert r.returncode == 2 and "verifier 'contians' is not a rule" in r.stderr and 'Traceback' not in r.stderr
    r = _rlvr('bench-verifier', '--verifier', 'math', '--data', str(tmp_path / 'nope.jsonl'))
    assert r.returncode == 2 and 'not found' in r.stderr
    r = _rlvr('bench-verifier', '--data', f'mmlu:{SETS / "mmlu"}')
    assert r.returncode == 2 and 'at least one --verifier' in r.stderr


# --- a judge behind an OpenAI-compatible endpoint --------------------------------------------------------------------
import http.server
import math


class _Judge(http.server.BaseHTTPRequestHandler):
    "An OpenAI-style chat endpoint: model 'yes' answers YES (p 0.8) to everything; model 'broken' answers 400."
    def log_message(self, *a): pass
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers['content-length'])))
        if req['model'] == 'broken': body, status = b'{"error": "no such model"}', 400
        else:
            first = {'token': 'YES', 'logprob': math.log(0.8), 'top_logprobs': [{'token': 'YES', 'logprob': math.log(0.8)}, {'token': 'NO', 'logprob': math.log(0.15)}]}
            body, status = json.dumps({'choices': [{'message': {'content': 'YES'}, 'logprobs': {'content': [first]}}]}).encode(), 200
        self.send_response(status); self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)


@pytest.fixture(scope='module')
def endpoint():
    sys.path.insert(0, str(Path(__file__).parent))
    from vllm_fixtures import http_endpoint
    with http_endpoint(_Judge) as url: yield url


def test_bench_a_judge_behind_an_endpoint(endpoint, tmp_path):
    res = bench_verifiers([f'openai:yes@{endpoint}', f'openai:broken@{endpoint}', f'cascade:math+openai:yes@{endpoint}'],
                          [f'math500:{SETS / "math500.jsonl"}'], probe_keys=4, probe_questions=2, output_dir=tmp_path, progress=False)
    t = res.table.set_index('verifier')
    yes, broken = t.loc[f'openai:yes@{endpoint}'], t.loc[f'openai:broken@{endpoint}']
    assert (yes.recall, yes.fpr, yes.master_key_fpr, yes.judge_errors) == (1.0, 1.0, 1.0, 0.0)    # a judge that pays everything
    assert yes.auc == 0.5 and yes.ece == pytest.approx(0.8 - 0.5, abs=1e-9)                     # one score for all: no ranking
    assert broken.judge_errors == 1.0 and broken.recall == 0.0 and broken.parse_failures == 0.0  # errors pay 0, counted apart
    casc = t.loc[f'cascade:math+openai:yes@{endpoint}']
    assert casc.fpr == 1.0 and 0 < casc.judge_calls_saved < 1                # the rule settles its YES; the judge pays the rest
    idents = [json.loads(p.read_text()) for p in (tmp_path / 'verdicts').glob('*.json')]
    assert any(i.get('judge') == f'openai:yes@{endpoint}' for i in idents)
