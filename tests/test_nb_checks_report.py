"""Checks moved out of `nbs/08b_report.ipynb`, where each function keeps one example: the smoothed curve's length,
window and trend, the learning curves of a made-up run, and a made-up run's baseline, published `results.json` and
plots."""
import json, shutil, tempfile
from pathlib import Path

import numpy as np
from fastcore.test import test_eq
test_eq.__test__ = False   # fastcore's helper, not a test

from rlvr_nb.config import RunConfig
from rlvr_nb.report import _smooth_window, rebuild_report, results_dict, smooth_curve
from rlvr_nb.runner import jsonable

def test_smooth_curve_keeps_length_window_and_trend():
    rng = np.random.default_rng(0)
    trend = 0.3 + 0.4 * np.arange(200) / 200
    raw = trend + rng.normal(0, 0.1, trend.size)
    sm = smooth_curve(raw)
    test_eq(len(sm), len(raw)); test_eq(_smooth_window(len(raw)), 21)
    assert np.abs(sm - trend)[10:-10].max() < 0.06 and np.abs(sm - trend).max() < 0.1   # no lag, the ends stay close too

def _done(out, stage, summary):
    (out / stage).mkdir(parents=True, exist_ok=True)
    (out / stage / 'DONE.json').write_text(json.dumps({'stage': stage, 'wall_s': 2.0, 'cpu_s': 1.5, 'timers': {'generation': 0.5}, 'summary': summary}))

def test_report_of_a_made_up_run():
    "The notebook's made-up run: two trained policies and an evaluation, no agreement study and no distillation."
    run = Path(tempfile.mkdtemp()) / 'run'
    RunConfig.toy(output_dir=str(run)).save(run / 'config.yaml')
    for name in ('rule_binary', 'student_soft'): _done(run, f'train/{name}', {'reward': name})
    _done(run, 'evaluate', {'initial': {'accuracy': 30.0, 'by_field': {'STEM': 25.0, 'Humanities': 40.0}, 'n': 10},
                            'rule_binary': {'accuracy': 50.0, 'by_field': {'STEM': 50.0, 'Humanities': 50.0}, 'n': 10},
                            'student_soft': {'accuracy': 60.0, 'by_field': {'STEM': 55.0, 'Humanities': 70.0}, 'n': 10}})
    res = results_dict(run)
    test_eq(res['baseline']['accuracy'], 30.0)
    rebuild_report(run)
    test_eq(json.loads((run / 'results.json').read_text()), jsonable(res))
    assert (run / 'report' / 'fields.png').stat().st_size > 1000 and not (run / 'report' / 'learning_curves.png').exists()
    shutil.rmtree(run.parent)

def test_learning_curves_of_a_made_up_run():
    "The learning curves of a made-up run of 150 steps, two policies."
    from rlvr_nb.report import plot_learning_curves
    rng = np.random.default_rng(0)
    demo = Path(tempfile.mkdtemp())
    for j, name in enumerate(('rule_binary', 'student_soft')):
        (demo / 'train' / name).mkdir(parents=True)
        recs = [{'stage': f'train/{name}', 'name': k, 'step': s, 'value': float(np.clip(b + (0.25 + 0.1 * j) * (1 - np.exp(-s / 50)) + rng.normal(0, 0.08), 0, 1))}
                for s in range(1, 151) for k, b in (('rewards/grader/mean', 0.3), ('reward', 0.35 + 0.1 * j))]
        (demo / 'train' / name / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    png = plot_learning_curves(demo, ['rule_binary', 'student_soft'], demo)
    assert Path(png).stat().st_size > 0 and Path(png).suffix == '.png'
    shutil.rmtree(demo)
