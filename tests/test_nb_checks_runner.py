"""Checks moved out of `nbs/08a_runner.ipynb`, where each function keeps one example: the run's metrics file, a failing
stage, a stale dependency, shared resources and work directories, the lock's details and a live process's leftovers."""
import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.runner import Stage, clean_stale_temps, run_lock, run_stages

def _write(ctx):
    (ctx.dir / 'numbers.json').write_text(json.dumps([1, 2, 3])); ctx.log('n', 3); return {'n': 3}
def _sum(ctx):
    xs = json.loads((ctx.input('first') / 'numbers.json').read_text())
    with ctx.timer('adding'): s = sum(xs)
    ctx.log('sum', s); (ctx.dir / 'sum.txt').write_text(str(s)); return {'sum': s}

def test_metrics_failing_stage_and_stale_dependency():
    tmpd = Path(tempfile.mkdtemp())
    st = [Stage('first', _write, conf={'a': 1}), Stage('second', _sum, deps=['first'], conf={'b': 1})]
    run_stages(st, tmpd, verbose=False)
    test_eq([json.loads(l)['name'] for l in (tmpd / 'metrics.jsonl').read_text().splitlines()], ['n', 'sum'])
    st2 = [st[0], Stage('second', _sum, deps=['first'], conf={'b': 2})]
    run_stages(st2, tmpd, verbose=False)
    def _boom(ctx): (ctx.dir / 'half.txt').write_text('partial'); raise ValueError('out of cheese')
    test_fail(lambda: run_stages(st2 + [Stage('third', _boom, deps=['second'])], tmpd, verbose=False), contains="stage 'third' failed")
    assert not (tmpd / 'third').exists() and (tmpd / 'second' / 'sum.txt').read_text() == '6'
    assert not [p for p in tmpd.iterdir() if p.name.startswith('.tmp')]
    test_fail(lambda: run_stages([Stage('first', _write, conf={'a': 9}), st2[1]], tmpd, only=['second'], verbose=False),
              contains="needs stage 'first', which was run with a different configuration")
    shutil.rmtree(tmpd)

def test_resources_and_work_dir_reach_the_stage():
    tmpd = Path(tempfile.mkdtemp())
    def _peek(ctx): return {'resources': ctx.resources, 'work': str(ctx.work_dir().relative_to(ctx.out))}
    rec = run_stages([Stage('peek', _peek, conf={'x': 1})], tmpd, verbose=False, resources='shared')['peek']
    test_eq(rec['summary'], {'resources': 'shared', 'work': f".work/peek-{rec['config_hash']}"})
    shutil.rmtree(tmpd)

def test_run_lock_pid_file_reentrant_and_held_by_the_os():
    d = Path(tempfile.mkdtemp())
    with run_lock(d):
        test_eq((d / '.lock').read_text().strip(), str(os.getpid()))
        with run_lock(d): pass                                            # re-entrant in the process that holds it
    (d / '.lock').write_text('1')                                         # a pid in the file holds nothing: the OS holds the lock
    with run_lock(d): pass
    shutil.rmtree(d)

def test_clean_stale_temps_live_and_dead():
    d = Path(tempfile.mkdtemp())
    dead = int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout)   # a process that is gone
    live = os.getppid()
    for name in (f'.tmp-train-rule_binary-{dead}', f'.old-explore-{dead}', f'.tmp-distill-{live}'): (d / name).mkdir()
    (d / f'.metrics.jsonl.tmp-{dead}').write_text('')
    test_eq(clean_stale_temps(d, verbose=False), [f'.metrics.jsonl.tmp-{dead}', f'.old-explore-{dead}', f'.tmp-train-rule_binary-{dead}'])
    test_eq(clean_stale_temps(d, verbose=False), [])                     # a live process's folder is kept ...
    with run_lock(d): test_eq(clean_stale_temps(d, verbose=False), [f'.tmp-distill-{live}'])   # ... unless this process holds the run lock
    shutil.rmtree(d)
