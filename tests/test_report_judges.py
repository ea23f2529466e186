"""The report's "Judges" section, from the `judges` entry of each stage's `DONE.json` summary (a hand-written run tree):
per stage and judge the requests, parse failures and judge errors, and per server requests / failures; a run whose
summaries have no `judges` renders as before. Also the edge cases of `smooth_curve` moved out of `nbs/08b_report.ipynb`."""
import json

import numpy as np
from fastcore.test import test_close, test_eq
for _f in (test_close, test_eq): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.config import RunConfig
from rlvr_nb.report import build_report, smooth_curve

EVAL = {'initial': {'accuracy': 30.0, 'by_field': {'STEM': 25.0}, 'n': 10},
        'rule_binary': {'accuracy': 50.0, 'by_field': {'STEM': 50.0}, 'n': 10}}
JUDGES = {
    'evaluate': {'grader': {'stats': {'requests': 20, 'parse_failures': 1, 'judge_errors': 2, 'rows': 20},
                            'endpoints': {'http://a:8000/v1': {'requests': 12, 'failures': 2, 'retries': 0, 'failovers': 2},
                                          'http://***@b:8000/v1': {'requests': 10, 'failures': 0, 'retries': 1, 'failovers': 0}}}},
    'train/rule_binary': {'grader': {'stats': {'requests': 64},                        # counters at 0 may be left out
                                     'endpoints': {'http://a:8000/v1': {'requests': 64}}},
                          'rule': {'stats': {}}},
}

def _run(root, judges: bool):
    "A made-up finished run: one trained policy and its evaluation, with or without the judges' counters."
    run = root / ('with' if judges else 'without')
    RunConfig.toy(output_dir=str(run)).save(run / 'config.yaml')
    for stage, summary in (('train/rule_binary', {'reward': 'rule_binary'}), ('evaluate', EVAL)):
        summary = {**summary, **({'judges': JUDGES[stage]} if judges else {})}
        (run / stage).mkdir(parents=True, exist_ok=True)
        (run / stage / 'DONE.json').write_text(json.dumps({'stage': stage, 'wall_s': 2.0, 'cpu_s': 1.5, 'timers': {}, 'summary': summary}))
    return run

def test_judges_table_per_stage_and_server(tmp_path):
    md = build_report(_run(tmp_path, judges=True))
    sec = md[md.index('## Judges'):md.index('## Stages')].strip().splitlines()
    test_eq(sec[2], '| stage | judge | requests | parse failures | judge errors | servers: requests / failures |')
    test_eq(sec[4:], ['| train/rule_binary | grader | 64 | 0 | 0 | http://a:8000/v1 64 / 0 |',
                      '| train/rule_binary | rule | – | – | – | – |',
                      '| evaluate | grader | 20 | 1 | 2 | http://a:8000/v1 12 / 2, http://***@b:8000/v1 10 / 0 |'])
    assert md.index('## Held-out accuracy') < md.index('## Judges') < md.index('## Stages')

def test_runs_without_judge_counters_render_as_before(tmp_path):
    old, new = build_report(_run(tmp_path, judges=False)), build_report(_run(tmp_path, judges=True))
    assert '## Judges' not in old
    a, b = new.index('## Judges'), new.index('## Stages')
    test_eq(new[:a] + new[b:], old.replace('without', 'with'))                # the same report, less the section

def test_judge_errors_fall_back_to_failed_requests(tmp_path):
    run = _run(tmp_path, judges=False)
    d = json.loads((run / 'evaluate' / 'DONE.json').read_text())
    d['summary']['judges'] = {'teacher': {'stats': {'requests': 5, 'failed_requests': 3}}}   # a bare backend's counters
    (run / 'evaluate' / 'DONE.json').write_text(json.dumps(d))
    assert '| evaluate | teacher | 5 | 0 | 3 | – |' in build_report(run)

def test_smooth_curve_edge_cases():
    rng = np.random.default_rng(0)
    trend = 0.3 + 0.4 * np.arange(200) / 200
    raw = trend + rng.normal(0, 0.1, trend.size)
    test_eq(smooth_curve([0.1, 0.9, 0.2]), np.array([0.1, 0.9, 0.2]))                 # too short: unchanged
    test_close(smooth_curve(np.full(50, 0.5)), np.full(50, 0.5))
    test_eq(len(smooth_curve(raw, window=5)), 200)
