"""Wall time per stage of a pipeline run, and the shares spent in generation, judging and optimisation.

    python bench/pipeline.py                          # run the toy preset into a fresh temp dir, then report
    python bench/pipeline.py --run_dir rlvr_run       # report on an existing run (nothing is run)
    python bench/pipeline.py --set train.max_steps=4  # a smaller toy run (KEY=VALUE overrides, as `rlvr run --set`)

The stages time their own work (`StageContext.timer`): *generation* is the policy writing answers
(`model.generate`, wrapped), *judging* is any verifier scoring them (reward functions, the teacher, the
grader), *optimisation* is the rest of a training call (forward/backward passes, optimiser, TRL's
bookkeeping); *other* is what remains of the stage's wall time: imports, loading models, building
trainers and datasets, writing files. Prints a table and a final JSON line starting with `PIPELINE_BENCH`.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

PARTS = ('generation', 'judging', 'optimisation')


def stage_table(run_dir: Path) -> list[dict]:
    "One row per completed stage of `run_dir`, from the `DONE.json` markers, in pipeline order."
    rows = []
    for d in run_dir.glob('**/DONE.json'):
        r = json.loads(d.read_text())
        if 'config_hash' not in r: continue          # a DONE.json written by a library call inside a stage
        tm = r.get('timers', {})
        wall = float(r.get('wall_s') or 0.0)
        parts = {k: float(tm.get(k, 0.0)) for k in PARTS}
        rows.append({'stage': r['stage'], 'wall_s': wall, 'cpu_s': float(r.get('cpu_s') or 0.0), **parts, 'other': max(0.0, wall - sum(parts.values())),
                     'started': r.get('started', 0)})
    return sorted(rows, key=lambda r: r['started'])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run_dir', help='an existing run directory: report on it, run nothing')
    ap.add_argument('--output_dir', help='where to run (default: a fresh temporary directory)')
    ap.add_argument('--set', nargs='+', default=[], help='config overrides KEY=VALUE (YAML values)')
    ap.add_argument('--threads', type=int, default=int(os.environ.get('RLVR_THREADS', '2')), help='torch threads')
    a = ap.parse_args(argv)
    if a.run_dir:
        out, total = Path(a.run_dir), None
    else:
        import torch
        torch.set_num_threads(a.threads)
        from rlvr_nb.cli import _overrides
        from rlvr_nb.pipeline import RunConfig, run_pipeline
        out = Path(a.output_dir or tempfile.mkdtemp(prefix='rlvr-bench-'))
        cfg = RunConfig.toy(output_dir=str(out), **_overrides(a.set))
        t0 = time.perf_counter()
        run_pipeline(cfg, progress=False, verbose=True)
        total = time.perf_counter() - t0
    rows = stage_table(out)
    if not rows: sys.exit(f"{out}: no completed stages")
    sums = {k: sum(r[k] for r in rows) for k in ('wall_s', 'cpu_s', *PARTS, 'other')}
    print(f"\n{'stage':<22}{'wall s':>9}{'cpu s':>9}{'gen s':>9}{'judge s':>9}{'optim s':>9}{'other s':>9}")
    for r in rows + [{'stage': 'all stages', **sums}]:
        print(f"{r['stage']:<22}{r['wall_s']:9.1f}{r['cpu_s']:9.1f}{r['generation']:9.1f}{r['judging']:9.1f}{r['optimisation']:9.1f}{r['other']:9.1f}")
    print('cpu s: CPU time of the pipeline process (all threads); on a busy machine wall time exceeds it')
    shares = {k: round(100 * sums[k] / sums['wall_s'], 1) if sums['wall_s'] else None for k in (*PARTS, 'other')}
    print('shares of the summed stage wall time (%): ' + ', '.join(f"{k} {v}" for k, v in shares.items()))
    if total is not None: print(f"end-to-end wall time (incl. imports and config checks): {total:.1f} s")
    print('PIPELINE_BENCH ' + json.dumps({'run_dir': str(out), 'total_s': None if total is None else round(total, 1),
                                          'stages': {r['stage']: {k: round(r[k], 2) for k in ('wall_s', 'cpu_s', *PARTS, 'other')} for r in rows},
                                          'shares_pct': shares}))


if __name__ == '__main__':
    main()
