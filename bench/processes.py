"""`rlvr run` on one process against two (`torchrun`, gloo on the CPU), side by side on the same small toy config.

    python bench/processes.py [--reps 3] [--set KEY=VALUE ...]

The global batch is the same (16 samples per RL step: 16 per device on one process, 8 on each of two), so both do the
same work. Each repetition runs the config from scratch twice, in alternating order: `python -m rlvr_nb.cli run` and
`torchrun --nproc_per_node 2 -m rlvr_nb.cli run`, both as fresh processes (start-up included, as a user sees it).
Prints per-stage wall times (medians over the repetitions, from each run's `DONE.json`), the total wall time, and the
ratio two / one, and checks that both runs graded the same answers when the config is deterministic (learning rate 0,
greedy answers). On a machine with N cores the two ranks share them; on GPUs each rank has its own device.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ['train.rewards=[rule_binary,student_soft]', 'models.judges=[]', 'data.n_explore=64', 'data.n_train=64', 'data.n_test=96',
        'explore.max_steps=4', 'distill.batch_size=16', 'distill.sft_args={micro_batch_size: 8}',
        'train.max_steps=4', 'train.learning_rate=0.0', 'train.monitor_grader=false']
GLOBAL_BATCH = 16   # samples per RL step, whatever the number of processes: per-device batch = 16 / processes

def batch(procs: int) -> list[str]:
    return [f'{s}.per_device_train_batch_size={GLOBAL_BATCH // procs}' for s in ('explore', 'train')]

def run(out: Path, procs: int, sets: list[str], port: int) -> float:
    env = {**os.environ, 'OMP_NUM_THREADS': str(max(1, (os.cpu_count() or 2) // procs)), 'CUDA_VISIBLE_DEVICES': os.environ.get('CUDA_VISIBLE_DEVICES', '')}
    cli = ['-m', 'rlvr_nb.cli', 'run', '--quiet', '--output_dir', str(out), '--set', *sets, *batch(procs)]
    cmd = [sys.executable, *cli] if procs == 1 else ['torchrun', '--nproc_per_node', str(procs), '--master_port', str(port), *cli]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode: sys.exit(f"{' '.join(cmd[:4])} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0

def stages(out: Path) -> dict[str, float]:
    rows = sorted((json.loads(p.read_text()) for p in out.glob('**/DONE.json')), key=lambda r: r.get('started', 0))
    return {r['stage']: r['wall_s'] for r in rows if 'config_hash' in r}   # in the order they ran

def answers(out: Path):
    import pandas as pd
    return {p.stem: pd.read_parquet(p)[['question', 'response', 'correct']] for p in sorted((out / 'evaluate').glob('*.parquet'))}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--set', nargs='+', default=[], help='more config overrides KEY=VALUE')
    a = ap.parse_args(argv)
    sets, walls, per = SETS + a.set, {1: [], 2: []}, {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            for procs in ((1, 2) if rep % 2 == 0 else (2, 1)):
                out = Path(tmp) / f'r{rep}-p{procs}'
                walls[procs].append(run(out, procs, sets, 29400 + rep))
                per[procs].append(stages(out))
            same = all(x.equals(y) for x, y in zip(answers(Path(tmp) / f'r{rep}-p1').values(), answers(Path(tmp) / f'r{rep}-p2').values()))
            print(f'rep {rep}: one process {walls[1][-1]:.1f} s, two {walls[2][-1]:.1f} s; the same graded answers: {same}', flush=True)
    med = lambda xs: statistics.median(xs)
    print('\n| stage | 1 process (s) | 2 processes (s) | 2 / 1 |\n|---|---|---|---|')
    for st in per[1][0]:
        one, two = med([p[st] for p in per[1]]), med([p[st] for p in per[2]])
        print(f'| {st} | {one:.1f} | {two:.1f} | {two / one:.2f} |')
    one, two = med(walls[1]), med(walls[2])
    print(f'| **whole command** (start-up included) | {one:.1f} | {two:.1f} | {two / one:.2f} |')
    print(f"\ncores: {os.cpu_count()}; medians of {a.reps} repetitions; MULTIPROCESS_BENCH {json.dumps({'one_s': one, 'two_s': two, 'ratio': two / one})}")

if __name__ == '__main__':
    main()
