"""Tests of rlvr_nb.explore (STEP 1) on real (tiny) components: tiny Qwen2 policies, the RLVRTrainer exploration run,
the toy oracle as teacher; crash and resume, shard formats, the former parameter name."""
import math

import pytest

from rlvr_nb.distill import verdict_sft_dataset
from rlvr_nb.explore import ExplorationRecorder, ShardWriter, collect_exploration, load_exploration, shard_paths
from rlvr_nb.toy import ToyOracle, make_toy_dataset, toy_model, toy_tokenizer


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def tok(): return toy_tokenizer()


class CountingOracle(ToyOracle):
    "The toy oracle, counting its calls; raises on call number `fail_at` (a crash in the middle of a run)."
    def __init__(self, fail_at=None):
        super().__init__()
        self.calls, self.fail_at = 0, fail_at
    def judge(self, q, r, a):
        self.calls += 1
        if self.calls == self.fail_at: raise RuntimeError('teacher crashed')
        return super().judge(q, r, a)


def test_collect_exploration_shards_resume(tmp_path, tok):
    ds = make_toy_dataset(4, seed=0)
    kw = dict(output_dir=tmp_path / 'expl', tokenizer=tok, max_steps=4, per_device_train_batch_size=8,
              max_completion_length=6, save_steps=2, verbose=False)
    crash = CountingOracle(fail_at=4)
    with pytest.raises(RuntimeError, match='teacher crashed'):
        collect_exploration(toy_model(tok, hidden_size=32, num_layers=1), crash, ds, **kw)
    shards = shard_paths(tmp_path / 'expl')
    assert len(shards) == 3 and not (tmp_path / 'expl' / 'DONE.json').exists()
    assert not [p for p in (tmp_path / 'expl' / 'shards').iterdir() if p.name.startswith('.')]   # no half-written shard
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    again = CountingOracle()
    e = collect_exploration(toy_model(tok, hidden_size=32, num_layers=1), again, ds, **kw)
    assert again.calls == 2                                  # resumed from checkpoint-2: steps 2 and 3 only
    assert {p.name: p.stat().st_mtime_ns for p in shards} == mtimes   # finished shards untouched
    assert len(e) == 4 * 8 and sorted(set(e['step'])) == [0, 1, 2, 3]
    assert {'prompt_id', 'question', 'reference', 'response', 'final_step', 'verdict', 'p_yes', 'step', 'domain'} <= set(e.column_names)
    assert set(e['verdict']) <= {'YES', 'NO'} and set(e['prompt_id']) <= set(range(4))
    oracle = ToyOracle().judge(e['question'], e['response'], e['reference'])
    assert [v.label for v in oracle] == e['verdict']
    done = CountingOracle()
    e2 = collect_exploration(toy_model(tok, hidden_size=32, num_layers=1), done, ds, **kw)
    assert done.calls == 0 and e2.to_list() == e.to_list()   # a finished run does no new work
    sft = verdict_sft_dataset(tmp_path / 'expl', verbose=False)   # the directory is a valid source
    assert len(sft) >= 1


def test_shard_writer_jsonl_roundtrip(tmp_path):
    rec = ExplorationRecorder(ToyOracle(), ShardWriter(tmp_path, fmt='jsonl', rank=0))
    rows = make_toy_dataset(2, seed=1)
    r = rec(prompts=[None] * 2, completions=['x\n' + rows[0]['reference'], ':'], question=rows['question'],
            reference=rows['reference'], prompt_id=[0, 1])
    assert r[1] == 0.0 and all(math.isfinite(x) for x in r)
    e = load_exploration(tmp_path)
    assert e['final_step'] == [rows[0]['reference'], ':'] and e['step'] == [0, 0]


def test_former_name_n_still_works(tmp_path, tok):
    ds = make_toy_dataset(2, seed=0)
    kw = dict(output_dir=tmp_path / 'expl', tokenizer=tok, max_steps=1, per_device_train_batch_size=4, max_completion_length=4,
              verbose=False)
    with pytest.warns(FutureWarning, match="'n' is now called 'num_generations'"):
        e = collect_exploration(toy_model(tok, hidden_size=32, num_layers=1), ToyOracle(), ds, n=2, **kw)
    assert len(e) == 4 and sorted(e['prompt_id']) == [0, 0, 1, 1]                  # 2 prompts x 2 generations
    with pytest.raises(TypeError, match='got both'):
        collect_exploration(None, ToyOracle(), ds, n=2, num_generations=2, **{**kw, 'output_dir': tmp_path / 'x'})


class FlakyOracle(ToyOracle):
    "The toy oracle whose every second request fails (no verdict: a judge error)."
    def judge(self, q, r, a):
        from rlvr_nb.verify import Verdict
        vs = super().judge(q, r, a)
        return [Verdict(None, error='HTTP 503') if i % 2 else v for i, v in enumerate(vs)]


def test_judge_errors_are_recorded_apart_and_not_distilled(tmp_path):
    rows = make_toy_dataset(4, seed=2)
    rec = ExplorationRecorder(FlakyOracle(), ShardWriter(tmp_path, fmt='parquet', rank=0))
    comps = ['x\n' + r for r in rows['reference']]
    rw = rec(prompts=[None] * 4, completions=comps, question=rows['question'], reference=rows['reference'], prompt_id=list(range(4)))
    assert rec.judge_errors == 2 and rec.last_parse_failures == [False] * 4 and rw[1] == rw[3] == 0.0
    e = load_exploration(tmp_path)
    assert e['judge_error'] == [None, 'HTTP 503', None, 'HTTP 503'] and e['verdict'][1] is None
    assert len(verdict_sft_dataset(tmp_path, verbose=False)) == 2               # only the two real verdicts are training rows
