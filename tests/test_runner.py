"""The stage runner's reliability: the run lock under racing processes and after SIGKILL, what a killed run leaves
behind, and the fingerprints of data files (hashed once per process)."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from rlvr_nb.runner import RunLockedError, Stage, run_lock, run_stages

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

def dead_pid() -> int:
    "The pid of a process that has exited (and been reaped)."
    p = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True, check=True)
    return int(p.stdout)

RACER = r'''
import json, sys, time
from pathlib import Path
from rlvr_nb.runner import RunLockedError, run_lock
base, t0, trials, window, hold = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
out = []
for k in range(trials):
    start = t0 + k * (window + 0.02); end = start + window
    if start - time.time() > 0.003: time.sleep(start - time.time() - 0.003)
    while time.time() < start: pass                     # every racer starts trying at the same instant ...
    held = []
    while time.time() < end:                            # ... and keeps trying: each hold is short, so the lock changes hands often
        try:
            with run_lock(base / f'trial{k}'):
                a = time.monotonic(); time.sleep(hold); b = time.monotonic()
            held.append([a, b])
        except RunLockedError: pass
    out.append(held)
print(json.dumps(out))
'''

def test_lock_holds_under_racing_processes(tmp_path):
    "4 processes race for the lock of one directory for 0.1 s, 40 times: in every trial the lock is taken, and no two processes hold it at once."
    n_proc, trials, window, hold = 4, 40, 0.1, 0.002
    for k in range(trials): (tmp_path / f'trial{k}').mkdir()
    t0 = time.time() + 2.5                              # time for every racer to start and import
    procs = [subprocess.Popen([sys.executable, '-c', RACER, str(tmp_path), str(t0), str(trials), str(window), str(hold)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(n_proc)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    bad = []
    for k in range(trials):
        held = sorted(tuple(iv) for r in results for iv in r[k])     # (acquired, released), measured inside the lock
        assert held, f"trial {k}: nobody got the lock"
        if any(a2 < b1 for (a1, b1), (a2, b2) in zip(held, held[1:])): bad.append(k)
    assert not bad, f"two processes held the lock at once in {len(bad)} of {trials} trials"

def test_lock_released_when_the_holder_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', f"import time\nfrom pathlib import Path\nfrom rlvr_nb.runner import run_lock\n"
                               f"with run_lock(Path({str(tmp_path)!r})): print('locked', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(RunLockedError, match=f'pid {holder.pid}'):
            with run_lock(tmp_path): pass
    finally:
        holder.send_signal(signal.SIGKILL); holder.wait()
    with run_lock(tmp_path): pass                       # the OS released it: no stale lock to take over
    with run_lock(tmp_path):
        with run_lock(tmp_path): pass                   # re-entrant within the process that holds it

def test_a_pid_in_the_lock_file_holds_nothing(tmp_path):
    (tmp_path / '.lock').write_text(str(os.getppid()))  # a live process's pid, but no lock: the run goes ahead
    with run_lock(tmp_path): assert (tmp_path / '.lock').read_text().strip() == str(os.getpid())

def _noop(ctx): (ctx.dir / 'x.txt').write_text('x'); return {}

def test_dead_temp_folders_are_removed_by_the_next_run(tmp_path):
    dead, live = dead_pid(), os.getppid()
    stale = [f'.tmp-train-rule_binary-{dead}', f'.old-explore-{dead}']
    for name in stale + [f'.tmp-distill-{live}']:
        (tmp_path / name).mkdir(); (tmp_path / name / 'policy.bin').write_bytes(b'0' * 100)
    (tmp_path / f'.metrics.jsonl.tmp-{dead}').write_text('{}')
    (tmp_path / '.work').mkdir()                        # a stage's resumable scratch: kept
    run_stages([Stage('s', _noop, conf={})], tmp_path, verbose=False)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ['.tmp-distill-' + str(live), '.work', 'metrics.jsonl', 's'], left   # a live process's folder is kept ...
    with run_lock(tmp_path):                            # ... unless this process holds the run lock: nobody else can be writing it
        run_stages([Stage('s', _noop, conf={})], tmp_path, verbose=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.tmp')]

def test_clean_stale_temps_names_what_it_removed(tmp_path):
    from rlvr_nb.runner import clean_stale_temps
    dead = dead_pid()
    (tmp_path / f'.tmp-evaluate-{dead}').mkdir(); (tmp_path / 'train').mkdir(); (tmp_path / '.lock').write_text('')
    assert clean_stale_temps(tmp_path, verbose=False) == [f'.tmp-evaluate-{dead}']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.lock', 'train']

def test_file_fingerprint_content_not_mtime_and_hashed_once(tmp_path):
    from rlvr_nb.runner import _sha256, file_fingerprint
    f = tmp_path / 'train.jsonl'
    f.write_bytes(b'{"question": "a"}\n' * 50_000)
    calls0 = _sha256.cache_info().misses
    fp = file_fingerprint(f)
    for _ in range(5): assert file_fingerprint(f) == fp
    assert _sha256.cache_info().misses == calls0 + 1    # hashed once for this (path, size, mtime)
    os.utime(f, ns=(10**18, 10**18))
    assert file_fingerprint(f) == fp                    # touched: same bytes, same fingerprint (hashed again)
    data = bytearray(f.read_bytes()); data[7] = ord('b'); f.write_bytes(bytes(data))
    assert file_fingerprint(f)['sha256'] != fp['sha256'] and file_fingerprint(f)['size'] == fp['size']
