"""Checks moved out of `nbs/00a_io.ipynb`, where each function keeps one example: refused and explicit frame formats and
no temporary file left by atomic writes, the swap of `replace_dir`, a changed cache key and a clean cache, the files
`code_hash` reads, and a stable hash."""
import shutil, tempfile as _tf
from pathlib import Path

import pandas as pd
from fastcore.test import test_eq, test_fail, test_ne
for _f in (test_eq, test_fail, test_ne): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.io import (_write_via_tmp, atomic_write_frame, atomic_write_text, cache_dir, cached_artifact, code_hash,
                        code_sources, replace_dir)

def test_atomic_write_formats_and_no_temporary_file_left():
    d = Path(_tf.mkdtemp())
    test_eq(atomic_write_text(d / 'sub' / 'a.txt', 'héllo\n').read_text(encoding='utf-8'), 'héllo\n')
    df = pd.DataFrame({'q': ['2+2', 'ünï'], 'n': [4, 5]})
    for suffix in ('.parquet', '.jsonl', '.csv'): atomic_write_frame(df, d / f'f{suffix}')
    test_fail(lambda: atomic_write_frame(df, d / 'f.xlsx'), contains='.xlsx')
    test_eq(pd.read_parquet(atomic_write_frame(df, d / 'f.pq', fmt='parquet')).to_dict('records'), df.to_dict('records'))
    def _boom(tmp): tmp.write_text('half'); raise RuntimeError('disk full')
    test_fail(lambda: _write_via_tmp(d / 'a.txt', _boom), contains='disk full')
    test_eq(sorted(p.name for p in d.iterdir()), ['f.csv', 'f.jsonl', 'f.parquet', 'f.pq', 'sub'])   # no temporary file left
    shutil.rmtree(d)

def test_replace_dir_swaps_and_leaves_no_copy():
    d = Path(_tf.mkdtemp()); (d / 'sub').mkdir()
    a, b = d / 'new', d / 'dest'
    a.mkdir(); (a / 'x').write_text('1')
    test_eq(replace_dir(a, b), True)
    a.mkdir(); (a / 'x').write_text('2')
    test_eq((replace_dir(a, b, overwrite=False), (b / 'x').read_text(), a.exists()), (False, '1', True))
    test_eq((replace_dir(a, b), (b / 'x').read_text(), a.exists()), (True, '2', False))
    test_eq(sorted(p.name for p in d.iterdir() if p.is_dir()), ['dest', 'sub'])   # the swapped-out copy is gone
    shutil.rmtree(d)

def test_cached_artifact_new_key_and_clean_cache(monkeypatch):
    monkeypatch.setenv('RLVR_NB_CACHE', _tf.mkdtemp())
    calls = []
    def _build(p): calls.append(1); (p / 'x.txt').write_text('hi')
    p1 = cached_artifact('demo', {'a': 1}, _build); p2 = cached_artifact('demo', {'a': 1}, _build)
    test_eq((p1, len(calls), (p1 / 'x.txt').read_text()), (p2, 1, 'hi'))
    test_ne(cached_artifact('demo', {'a': 2}, _build), p1)
    test_eq([q.name for q in cache_dir().iterdir() if q.name.startswith('.')], [])   # no temporary folders or lock files left

def test_code_hash_sources_and_missing_file():
    test_eq([p.name for p in code_sources('rlvr_nb.io', files=['data/judge_template.txt'])], ['io.py', 'judge_template.txt'])
    test_fail(lambda: code_hash('rlvr_nb.io', files=['data/nope.csv']), contains='nope.csv')

def test_code_hash_is_stable():
    test_eq(code_hash('rlvr_nb.io'), code_hash('rlvr_nb.io'))
