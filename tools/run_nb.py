"""Execute a notebook in place and keep its outputs, so the docs show them.

    python tools/run_nb.py nbs/06_rl.ipynb            # runs every cell except those flagged gpu
    python tools/run_nb.py nbs/06_rl.ipynb --skip gpu vllm
    python tools/run_nb.py nbs/03_reward.ipynb --skip gpu vllm --keep 9a2dd781   # ... and cell 9a2dd781 keeps its output

Cells flagged with a skipped flag (default: gpu) keep their source and lose no committed output;
`nbdev_export(` cells are not executed. Stops at the first error and leaves the notebook unchanged.
"""
import argparse, os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import NBProcessor
from nbdev.processors import FrontmatterProc
from fastcore.xtras import working_directory

def run_nb(path, skip=('gpu',), keep=()):
    path = Path(path).absolute()
    nb = read_nb(path)
    proc = NBProcessor(path, procs=FrontmatterProc, process=True).nb  # parses directives_
    skipped = set(skip)
    def _no_eval(cell):
        if cell.cell_type != 'code': return True
        if 'nbdev_export' + '(' in cell.source: return True
        if cell.get('id') in keep: return True
        direc = getattr(cell, 'directives_', {}) or {}
        return bool(skipped & set(direc.keys()))
    # run on the processed copy (which has directives_) and copy outputs back by index
    sh = CaptureShell(path)
    t0 = time.time()
    with working_directory(path.parent):
        sh.run_all(proc, exc_stop=True, preproc=_no_eval)
    for c, p in zip(nb.cells, proc.cells):
        if c.cell_type == 'code' and not _no_eval(p):
            c['outputs'] = p.get('outputs', [])
            c['execution_count'] = p.get('execution_count')
    write_nb(nb, path)
    print(f"{path.name}: ran in {time.time() - t0:.1f}s")

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('notebook')
    ap.add_argument('--skip', nargs='*', default=['gpu'])
    ap.add_argument('--keep', nargs='*', default=[], help='ids of cells not to run (their stored outputs are kept)')
    a = ap.parse_args()
    run_nb(a.notebook, a.skip, set(a.keep))
