"""`rlvr run` on two real processes (`torchrun`, gloo on CPU): the ranks build the same stages, train together, split
the evaluation and gather it; rank 0 alone writes. On a deterministic config (learning rate 0, greedy answers) the
results equal a one-process run's; a rerun resumes; a rank that raises or is killed ends the whole run, fast."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest

from test_pipeline import tiny_policy

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')

def sets(tmp, *extra):
    "A tiny toy run: the rule and the student rewards, so exploration and distillation run on both ranks too."
    return [f'models.policy={tiny_policy(tmp / "tiny_policy")}', 'models.judges=[]', 'train.rewards=[rule_binary,student_soft]',
            'data.n_explore=16', 'data.n_train=16', 'data.n_test=12', 'explore.max_steps=1', 'explore.max_completion_length=8',
            'explore.per_device_train_batch_size=8', 'distill.batch_size=16', 'distill.heldout=0.25',
            'distill.sft_args={micro_batch_size: 8}', 'train.max_steps=1', 'train.max_completion_length=8',
            'train.per_device_train_batch_size=8', 'train.learning_rate=0.0', 'train.monitor_grader=false',
            'evaluate.max_new_tokens=8', 'backends.dist_timeout=60', *extra]

def torchrun(out, sets, fault=None, timeout=240, quiet=True):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': str(HERE)}
    env.pop('RLVR_TEST_FAULT', None)
    if fault: env['RLVR_TEST_FAULT'] = fault
    cmd = ['torchrun', '--nproc_per_node', '2', '--master_port', str(29600 + os.getpid() % 500), str(HERE / 'pipeline_ranks.py'),
           'run', *(['--quiet'] if quiet else []), '--output_dir', str(out), '--set', *sets]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return p, time.perf_counter() - t0

def accelerate_run(out, sets, timeout=240):
    "The CLI itself (`-m rlvr_nb.cli`) under `accelerate launch` with the shipped two-process CPU config."
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    cmd = ['accelerate', 'launch', '--config_file', str(HERE.parent / 'configs' / 'accelerate' / 'cpu_ddp.yaml'),
           '--main_process_port', str(30100 + os.getpid() % 500), '-m', 'rlvr_nb.cli', 'run', '--output_dir', str(out), '--set', *sets]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

def graded(out, name) -> pd.DataFrame:
    return pd.read_parquet(out / 'evaluate' / f'{name}.parquet')[['question', 'response', 'correct']]

def test_two_processes_equal_one_and_resume(tmp_path):
    from rlvr_nb.cli import main
    one, two = tmp_path / 'one', tmp_path / 'two'
    t0 = time.perf_counter()
    assert main(['run', '--quiet', '--output_dir', str(one), '--set', *sets(tmp_path)]) == 0
    t_one = time.perf_counter() - t0
    p, t_two = torchrun(two, sets(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-4000:]
    print(f'one process {t_one:.1f} s (in this interpreter), two processes {t_two:.1f} s (with start-up)')
    r1, r2 = (json.loads((d / 'results.json').read_text()) for d in (one, two))
    pick = lambda r: [(q['name'], q['accuracy'], q.get('by_field'), q.get('n')) for q in r['policies']]
    assert pick(r1) == pick(r2) and [q['name'] for q in r2['policies']] == ['rule_binary', 'student_soft']
    for name in ('rule_binary', 'student_soft'):      # the same answers, graded the same, in the same order
        pd.testing.assert_frame_equal(graded(one, name), graded(two, name))
    # rank 0 alone wrote: one folder per stage, no rank's temporary folder or failure note, the work dirs cleaned up
    left = sorted(p.name for p in two.iterdir() if p.name.startswith('.') and p.name not in ('.lock', '.work'))
    assert left == [], left
    assert not any((two / '.work').iterdir()) if (two / '.work').exists() else True
    # exploration keeps both ranks' shards: the same batch per process, so twice the samples of one process
    n = [json.loads((d / 'explore' / 'DONE.json').read_text())['summary']['samples'] for d in (one, two)]
    assert n[0] > 0 and n[1] == 2 * n[0], n
    # a rerun resumes, here under accelerate launch: every stage skipped, nothing rewritten
    done = {d: (two / d / 'DONE.json').read_text() for d in ('explore', 'distill', 'train/rule_binary', 'evaluate')}
    p = accelerate_run(two, sets(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count('complete, skipped (resume)') == 6, p.stderr[-3000:]   # rank 0 says it, once per stage
    assert all((two / d / 'DONE.json').read_text() == t for d, t in done.items())

@pytest.mark.parametrize('how', ['raise', 'kill'])
def test_a_failing_rank_ends_the_run(tmp_path, how):
    out = tmp_path / 'run'
    p, took = torchrun(out, sets(tmp_path, 'train.rewards=[rule_binary]'), fault=f'train/rule_binary:1:{how}', timeout=180)
    assert p.returncode != 0, p.stderr[-3000:]
    assert took < 120, f'the run took {took:.0f} s to stop'
    if how == 'raise': assert "stage 'train/rule_binary' failed on rank 1: RuntimeError: a failure on purpose" in p.stderr, p.stderr[-3000:]
    assert not (out / 'train' / 'rule_binary' / 'DONE.json').exists()
    print(f'{how}: the run stopped {took:.1f} s after it started')
    if how == 'kill': return
    # the next run (no failure) resumes from what is there and finishes
    p, _ = torchrun(out, sets(tmp_path, 'train.rewards=[rule_binary]'))
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / 'results.json').is_file() and not list(out.glob('.rank-*.failed.json'))
