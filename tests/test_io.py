"""Tests of rlvr_nb.io: atomic writes of text, data frames and directories, and the artefact cache."""
import json, threading, time

import pandas as pd
import pytest

from rlvr_nb.io import (atomic_write_frame, atomic_write_text, cache_dir, cache_key, cached_artifact, code_hash, code_sources,
                        replace_dir)


def test_atomic_writes_leave_old_file_or_new_one(tmp_path, monkeypatch):
    p = atomic_write_text(tmp_path / 'a' / 'b.json', '{"v": 1}')
    assert json.loads(p.read_text()) == {'v': 1}
    df = pd.DataFrame({'x': [1, 2]})
    def boom(self, path, **kw):
        open(path, 'wb').write(b'PAR1 half')
        raise OSError('disk full')
    monkeypatch.setattr(pd.DataFrame, 'to_parquet', boom)
    atomic_write_text(tmp_path / 'old.parquet', 'old')
    with pytest.raises(OSError, match='disk full'): atomic_write_frame(df, tmp_path / 'old.parquet')
    assert (tmp_path / 'old.parquet').read_text() == 'old'                         # the old file, untouched
    assert sorted(q.name for q in tmp_path.iterdir()) == ['a', 'old.parquet']       # no temporary file left
    with pytest.raises(ValueError, match="'.xlsx'"): atomic_write_frame(df, tmp_path / 'x.xlsx')


def test_frame_formats_round_trip(tmp_path):
    df = pd.DataFrame({'q': ['ünï', '2+2'], 'n': [1, 2]})
    assert pd.read_parquet(atomic_write_frame(df, tmp_path / 'a.parquet')).equals(df)
    assert pd.read_json(atomic_write_frame(df, tmp_path / 'a.jsonl'), lines=True).equals(df)
    assert pd.read_csv(atomic_write_frame(df, tmp_path / 'a.csv')).equals(df)
    assert pd.read_parquet(atomic_write_frame(df, tmp_path / 'a.bin', fmt='parquet')).equals(df)
    assert 'ünï' in (tmp_path / 'a.jsonl').read_text(encoding='utf-8')              # not escaped


def test_replace_dir_swaps_or_keeps(tmp_path):
    def made(name, text):
        d = tmp_path / name; d.mkdir(); (d / 'f').write_text(text); return d
    dest = tmp_path / 'dest'
    assert replace_dir(made('a', '1'), dest) and (dest / 'f').read_text() == '1'
    src = made('b', '2')
    assert not replace_dir(src, dest, overwrite=False) and (dest / 'f').read_text() == '1' and src.exists()
    assert replace_dir(src, dest) and (dest / 'f').read_text() == '2' and not src.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dest']                   # the swapped-out copy is deleted


def test_cached_artifact_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv('RLVR_NB_CACHE', str(tmp_path))
    calls = []
    def build(p): calls.append(1); (p / 'a.txt').write_text('x')
    p1 = cached_artifact('thing', {'k': 1}, build)
    assert cached_artifact('thing', {'k': 1}, build) == p1 and len(calls) == 1 and p1.parent == tmp_path == cache_dir()
    assert p1.name == f"thing-{cache_key({'k': 1})}"
    assert json.loads((p1 / 'rlvr_nb_key.json').read_text()) == {'k': 1}
    def boom(p): (p / 'half.txt').write_text('x'); raise RuntimeError('boom')
    with pytest.raises(RuntimeError): cached_artifact('thing', {'k': 2}, boom)
    assert sorted(q.name for q in tmp_path.iterdir()) == [p1.name]      # nothing half-written left behind
    with pytest.raises(ValueError): cached_artifact('../evil', {}, build)


def test_cached_artifact_concurrent_builders_build_once(tmp_path, monkeypatch):
    monkeypatch.setenv('RLVR_NB_CACHE', str(tmp_path))
    calls, out = [], []
    def build(p): calls.append(1); time.sleep(0.2); (p / 'a.txt').write_text('x')
    ts = [threading.Thread(target=lambda: out.append(cached_artifact('slow', {'k': 1}, build))) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert len(calls) == 1 and len(set(out)) == 1 and (out[0] / 'a.txt').read_text() == 'x'


def test_code_hash_reads_modules_and_package_data():
    assert code_hash('rlvr_nb.io') == code_hash('rlvr_nb.io') != code_hash('rlvr_nb.io', files=['data/judge_template.txt'])
    assert code_hash('rlvr_nb.io', 'rlvr_nb.data') != code_hash('rlvr_nb.io')
    assert [p.name for p in code_sources('rlvr_nb.master_keys', files=['toy/data/facts.json'])] == ['master_keys.py', 'facts.json']
    with pytest.raises(ValueError, match='needs'): code_hash()
    with pytest.raises(ValueError, match='no_such'): code_hash('rlvr_nb.no_such')
    with pytest.raises(ValueError, match='nope.csv'): code_hash('rlvr_nb.io', files=['data/nope.csv'])
