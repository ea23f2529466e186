"""Readers of labelled verification sets (rlvr_nb.verify_sets): the three layouts, label spellings, bad rows named."""
import json

import pytest

from rlvr_nb.data import DataError
from rlvr_nb.verify_sets import VERIFY_COLUMNS, hardverify_rows, label_counts, labelled_rows, read_verification_set


def test_hardverify_gives_two_rows_per_item(tmp_path):
    items = [{'question': f'q{i}', 'ground_truth': f'a{i}', 'fn_output': f'right {i}', 'tn_output': f'wrong {i}', 'source': 'olympiad'}
             for i in range(4)]
    (tmp_path / 'hv.json').write_text(json.dumps(items))
    ds = read_verification_set(tmp_path / 'hv.json')
    assert ds.column_names == list(VERIFY_COLUMNS) and len(ds) == 8
    assert ds[0] == dict(question='q0', reference='a0', response='right 0', label='YES', raw_label='fn_output', source='olympiad', domain='')
    assert ds[1]['label'] == 'NO' and ds[1]['response'] == 'wrong 0'
    assert label_counts(ds) == {'n': 8, 'YES': 4, 'NO': 4, 'invalid': 0}


@pytest.mark.parametrize('raw,label', [(True, 'YES'), (False, 'NO'), (1, 'YES'), (0, 'NO'), ('yes', 'YES'), ('No', 'NO'),
                                       ('A', 'YES'), ('B', 'NO'), ('C', 'NO'), (' A ', 'YES')])
def test_label_spellings(raw, label):
    (r,) = labelled_rows([{'question': 'q', 'answer': 'a', 'completion': 'x', 'label': raw}])
    assert r['label'] == label and r['raw_label'] == str(raw)


def test_column_names_detected_and_bad_rows_named(tmp_path):
    rows = [{'problem': 'p', 'gold': 'g', 'llm_response': 'r', 'gold_judgment': 'A', 'category': 'physics'},
            {'question': 'q', 'reference': 'a', 'response': '', 'label': 0, 'data_source': 'web'}]
    out = labelled_rows(rows)
    assert [(o['question'], o['reference'], o['domain'], o['source']) for o in out] == [('p', 'g', 'physics', ''), ('q', 'a', '', 'web')]
    with pytest.raises(DataError, match="row 1: label 2 is not"):
        labelled_rows([rows[1], {**rows[1], 'label': 2}])
    with pytest.raises(DataError, match="row 0 has no response column") as e:
        labelled_rows([{'question': 'q', 'answer': 'a', 'label': 1}])
    assert e.value.field == 'response'
    with pytest.raises(DataError, match="row 0: 'question' must be a non-empty string"):
        labelled_rows([{'question': ' ', 'answer': 'a', 'completion': 'c', 'label': 1}])
    (tmp_path / 'x.jsonl').write_text('{"question": "q", "answer": "a", "completion": "c", "label": 1}\n{oops\n')
    with pytest.raises(DataError, match='line 2 is not JSON'): read_verification_set(tmp_path / 'x.jsonl')
    with pytest.raises(DataError, match='not found'): read_verification_set(tmp_path / 'missing.json')
    with pytest.raises(DataError, match="row 0: 'fn_output'"):
        hardverify_rows([{'question': 'q', 'ground_truth': 'a', 'fn_output': None, 'tn_output': 'b'}])


def test_parquet_and_invalid_count(tmp_path):
    import pandas as pd
    pd.DataFrame([{'question': 'q', 'answer': 'a', 'completion': c, 'label': l} for c, l in (('a', 'A'), ('b', 'B'), ('', 'C'))]
                 ).to_parquet(tmp_path / 'vb.parquet')
    assert label_counts(read_verification_set(tmp_path / 'vb.parquet')) == {'n': 3, 'YES': 1, 'NO': 2, 'invalid': 1}
