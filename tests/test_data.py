"Tests of the data layer (rlvr_nb.data): every bad-input error, every layout, MMLU and MATH-500, final_step properties."
import csv, io, json, logging, re, tempfile, warnings, zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given, settings, strategies as st

from rlvr_nb.data import (FIELDS, MMLU_TO_SUBJECT, OPTION_REFERENCE_RULES, POLICY_SYSTEM_PROMPT, SUBJECT_TO_FIELD, DataError, DataWarning,
                          OptionReferenceError, field_of, final_step, load_rlvr_dataset, mcq_to_freeform, mmlu_subject,
                          option_reference, read_mmlu, reference_kind)

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'   # CI: ../shared beside the checkout
SCHEMA = ['prompt', 'question', 'reference', 'subject', 'field', 'level', 'source']

# --- final_step -----------------------------------------------------------------------------------------

line = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'))

@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=6), st.sampled_from(['\n', '\r\n', '\r']), st.text(alphabet=' \t\r\n', max_size=5))
def test_final_step_is_last_nonempty_line(lines, sep, tail):
    text = sep.join(lines) + tail
    want = next((l.strip() for l in reversed(lines) if l.strip()), '')
    assert final_step(text) == want
    assert final_step('\n'.join(lines)) == final_step('\r\n'.join(lines)) == final_step('\r'.join(lines))

@given(st.text())
def test_final_step_shape(s):
    f = final_step(s)
    assert f == f.strip() and '\n' not in f and '\r' not in f
    assert (f == '') == (not s.strip())

@pytest.mark.parametrize('x', [None, 3, 2.5, b'abc\nxyz', ['a'], {'a': 1}])
def test_final_step_non_strings(x):
    assert final_step(x) == ''

def test_final_step_examples():
    assert final_step("Thought.\r\nTherefore, the answer is 7\r\n\r\n") == "Therefore, the answer is 7"
    assert final_step(" \t\n\u3000\n") == ''

# --- bad rows -------------------------------------------------------------------------------------------

BAD = [{'question': 'q0', 'answer': 'a0'},
       {'question': '', 'answer': 'a1'},            # empty question
       {'question': '   \t', 'answer': 'a2'},       # whitespace-only question
       {'question': None, 'answer': 'a3'},          # missing question
       {'question': 5, 'answer': 'a4'},             # non-string question
       {'question': 'q5', 'answer': ''},            # empty reference
       {'question': 'q6', 'answer': ' \n'},         # whitespace-only reference
       {'question': 'q7', 'answer': None},          # missing reference
       {'question': 'q8', 'answer': 3.5},           # non-string reference
       {'question': 'q9', 'answer': 'a9'}]

def test_bad_rows_name_rows_and_field():
    with pytest.raises(DataError) as e: load_rlvr_dataset(BAD)
    msg = str(e.value)
    assert "4 rows with a missing, empty, whitespace-only or non-string 'question' ('question'): rows [1, 2, 3, 4]" in msg
    assert "4 rows with a missing, empty, whitespace-only or non-string 'reference' ('answer'): rows [5, 6, 7, 8]" in msg

def test_missing_key_is_bad_row():
    with pytest.raises(DataError, match=r"'reference' \('answer'\): rows \[1\]"):
        load_rlvr_dataset([{'question': 'q', 'answer': 'a'}, {'question': 'q'}])

def test_skip_drops_and_counts(caplog):
    with caplog.at_level(logging.WARNING, logger='rlvr_nb.data'):
        ds = load_rlvr_dataset(BAD, on_bad='skip')
    assert ds['question'] == ['q0', 'q9'] and ds.column_names == SCHEMA
    assert "skipped 4 rows" in caplog.text and "rows [5, 6, 7, 8]" in caplog.text

def test_row_indices_beyond_twenty_are_elided():
    rows = [{'question': 'q', 'answer': ''} for _ in range(30)]
    with pytest.raises(DataError, match=r"30 rows .* rows \[0, 1, .*19\] \.\.\."): load_rlvr_dataset(rows)

def test_all_bad_with_skip_is_an_error():
    with pytest.raises(DataError, match='no usable rows'): load_rlvr_dataset(BAD[1:9], on_bad='skip')

def test_bad_arguments():
    with pytest.raises(ValueError, match="on_bad must be"): load_rlvr_dataset(BAD, on_bad='ignore')
    with pytest.raises(ValueError, match="refs must be"): load_rlvr_dataset(BAD, refs='maybe')
    with pytest.raises(DataError, match='no rows'): load_rlvr_dataset([])
    with pytest.raises(DataError, match=r'rows \[1\] are not dicts'): load_rlvr_dataset([{'question': 'q', 'answer': 'a'}, 'x'])
    with pytest.raises(DataError, match='cannot load a dataset from int'): load_rlvr_dataset(5)
    with pytest.raises(DataError, match='neither an existing file nor a hub id'): load_rlvr_dataset('/no/such/file.json')

def test_no_question_or_reference_column():
    with pytest.raises(DataError, match=r"no question column found among \['foo'\]"): load_rlvr_dataset([{'foo': 1}])
    with pytest.raises(DataError, match="no reference column"): load_rlvr_dataset([{'question': 'q', 'foo': 1}])

def test_columns_override():
    rows = [{'q': 'What?', 'r': 'That', 's': 'Chemistry', 'answer': 'ignored'}]
    ds = load_rlvr_dataset(rows, columns={'question': 'q', 'reference': 'r', 'subject': 's'})
    assert (ds[0]['question'], ds[0]['reference'], ds[0]['subject'], ds[0]['field']) == ('What?', 'That', 'Chemistry', 'STEM')
    with pytest.raises(DataError, match=r"'reference' \('r'\): rows \[0\]"):
        load_rlvr_dataset([{'q': 'x', 'r': ''}], columns={'question': 'q', 'reference': 'r'})

def test_limit_and_schema():
    ds = load_rlvr_dataset([{'question': f'q{i}', 'answer': f'a{i}'} for i in range(5)], limit=2)
    assert len(ds) == 2 and ds.column_names == SCHEMA
    assert ds[0]['prompt'] == [{'role': 'system', 'content': POLICY_SYSTEM_PROMPT}, {'role': 'user', 'content': 'q0'}]
    assert ds[0]['subject'] == 'Unclassified' and ds[0]['field'] == 'Others' and ds[0]['source'] == 'records'

def test_never_passes_padding_on():
    ds = load_rlvr_dataset([{'question': '  What?  ', 'answer': '\tThat \n'}])
    assert (ds[0]['question'], ds[0]['reference']) == ('What?', 'That')

# --- layouts --------------------------------------------------------------------------------------------

def test_released_layout():
    rows = [{'query': [{'role': 'system', 'content': 's'}, {'role': 'user', 'content': 'first'}, {'role': 'assistant', 'content': 'x'},
                       {'role': 'user', 'content': 'Who wrote Hamlet?'}], 'label': 'Shakespeare', 'subject_id': 750},
            {'query': [{'role': 'system', 'content': 's'}], 'label': 'x', 'subject_id': 150}]
    with pytest.raises(DataError, match=r"'question' \('query'\): rows \[1\]"): load_rlvr_dataset(rows)
    ds = load_rlvr_dataset(rows, on_bad='skip')
    assert (ds[0]['question'], ds[0]['subject'], ds[0]['field']) == ('Who wrote Hamlet?', 'Literature', 'Humanities')

def test_natural_reasoning_layout():
    ds = load_rlvr_dataset([{'question': 'Why is the sky blue?', 'reference_answer': 'Rayleigh scattering', 'responses': []}])
    assert ds[0]['reference'] == 'Rayleigh scattering'

def test_webinstruct_layout():
    ds = load_rlvr_dataset([{'question': 'What is GDP?', 'answer': 'gross domestic product', 'category': 'Economics', 'difficulty': 'easy'}])
    assert (ds[0]['reference'], ds[0]['subject'], ds[0]['field']) == ('gross domestic product', 'Economics', 'Social Sciences')
    ds = load_rlvr_dataset([{'instruction': 'Add 2 and 2.', 'final_answer': '4'}])
    assert ds[0]['question'] == 'Add 2 and 2.' and ds[0]['reference'] == '4'

def test_verl_math_layout():
    rows = [{'prompt': [{'role': 'user', 'content': "What is $1+1$? Let's think step by step and output the final answer within \\boxed{}."}],
             'reward_model': {'ground_truth': '2', 'style': 'rule'}, 'ability': 'math', 'data_source': 'MATH'}]
    ds = load_rlvr_dataset(rows)
    assert (ds[0]['question'], ds[0]['reference'], ds[0]['subject'], ds[0]['field']) == ('What is $1+1$?', '2', 'Mathematics', 'STEM')
    with pytest.raises(DataError, match=r"'reference' \('reward_model.ground_truth'\): rows \[0\]"):
        load_rlvr_dataset([{**rows[0], 'reward_model': {'ground_truth': ' '}}])

def test_math_hub_layout_keeps_level():
    ds = load_rlvr_dataset([{'problem': 'p', 'solution': 'long', 'answer': '\\frac12', 'subject': 'Precalculus', 'level': 3}])
    assert (ds[0]['reference'], ds[0]['subject'], ds[0]['field'], ds[0]['level']) == ('\\frac12', 'Mathematics', 'STEM', '3')

def test_dataset_source():
    import datasets
    ds = load_rlvr_dataset(datasets.Dataset.from_list([{'question': 'q', 'answer': 'a'}]))
    assert ds['reference'] == ['a']
    dd = datasets.DatasetDict({'train': datasets.Dataset.from_list([{'question': 'q', 'answer': 'a'}])})
    assert load_rlvr_dataset(dd)['question'] == ['q']

ROWS = [{'question': 'What is 2+2?', 'answer': '4', 'subject': 'Mathematics'},
        {'question': 'Capital of France?', 'answer': 'Paris', 'subject': 'History'}]

@pytest.mark.parametrize('ext', ['json', 'jsonl', 'parquet', 'csv'])
def test_files(tmp_path, ext):
    p = tmp_path / f'data.{ext}'
    df = pd.DataFrame(ROWS)
    {'json': lambda: p.write_text(json.dumps(ROWS)), 'jsonl': lambda: df.to_json(p, orient='records', lines=True),
     'parquet': lambda: df.to_parquet(p), 'csv': lambda: df.to_csv(p, index=False)}[ext]()
    ds = load_rlvr_dataset(p)
    assert ds['reference'] == ['4', 'Paris'] and ds['field'] == ['STEM', 'Humanities'] and ds['source'] == [p.name] * 2
    assert load_rlvr_dataset(str(p))['question'] == ds['question']

def test_file_with_bad_rows(tmp_path):
    p = tmp_path / 'bad.jsonl'
    p.write_text('\n'.join(json.dumps(r) for r in [ROWS[0], {'question': 'q', 'answer': ''}, ROWS[1]]))
    with pytest.raises(DataError, match=r"bad.jsonl: 1 rows .*'reference' \('answer'\): rows \[1\]"): load_rlvr_dataset(p)
    assert len(load_rlvr_dataset(p, on_bad='skip')) == 2

@pytest.mark.parametrize('name', ['data.txt', 'data.xlsx', 'data'])
def test_unknown_file_types(tmp_path, name):
    p = tmp_path / name
    p.write_text('question,answer\nq,a\n')
    with pytest.raises(DataError, match='unknown file type'): load_rlvr_dataset(p)

def test_unreadable_file(tmp_path):
    p = tmp_path / 'broken.parquet'
    p.write_bytes(b'not parquet at all')
    with pytest.raises(DataError, match='broken.parquet: cannot read as parquet'): load_rlvr_dataset(p)

def test_folder_without_mmlu(tmp_path):
    (tmp_path / 'x.json').write_text('[]')
    with pytest.raises(DataError, match='holds no MMLU'): load_rlvr_dataset(tmp_path)

# --- multiple choice ------------------------------------------------------------------------------------

def test_mcq_to_freeform_basics():
    assert mcq_to_freeform(' Q? ', ['a', ' b '], 'b') == {'question': 'Q?', 'reference': 'b'}
    assert mcq_to_freeform('Q', {'A': 'x', 'B': 'y'}, 0)['reference'] == 'x'
    for bad, match in [(('Q', ['x'], 'C'), 'not one of the options'), (('Q', ['x'], 3), 'not one of the options'),
                       (('Q', ['x'], -1), 'not one of the options'), (('Q', ['x'], None), 'not a letter or an index'),
                       (('Q', ['x'], True), 'not a letter or an index'), (('', ['x'], 'A'), 'question is missing'),
                       ((None, ['x'], 'A'), 'question is missing'), (('Q', ['', 'y'], 'A'), 'option A .* empty'),
                       (('Q', [None, 'y'], 'A'), 'option A .* empty')]:
        with pytest.raises(DataError, match=match): mcq_to_freeform(*bad)
    with pytest.raises(ValueError, match='refs must be'): mcq_to_freeform('Q', ['x'], 'A', refs='no')

@pytest.mark.parametrize('text,rule', [
    ('All of the above', 'all_of_the_above'), ('all of these options.', 'all_of_the_above'), ('All the above', 'all_of_the_above'),
    ('All of the options given are correct', 'all_of_the_above'), ('None of the above.', 'none_of_the_above'),
    ('none of these', 'none_of_the_above'), ('Neither of these', 'neither'), ('Neither A nor B', 'neither'),
    ('Both A and B', 'both'), ('Both', 'both'), ('both of these.', 'both'), ('Either of these', 'either'),
    ('Any one or combinations of the above methods', 'either'), ('A and C', 'letter_combination'),
    ('A, B and D', 'letter_combination'), ('(a) or (c)', 'letter_combination')])
def test_option_reference_rules(text, rule):
    assert option_reference(text)[0] == rule
    assert rule in OPTION_REFERENCE_RULES

@pytest.mark.parametrize('text', ['Both instinctive and learned', 'Neither position nor momentum can be known', 'B', 'A',
                                  'Nearly all of the enzyme molecules are in use', 'Both 2 and 3', 'I and II only', 'Not wrong, Not wrong', None, ''])
def test_option_reference_leaves_plain_options(text):
    assert option_reference(text) is None

def test_option_reference_drop_rewrite_keep():
    opts = ['Oxygen', 'Carbon dioxide', 'Water', 'Both A and C']
    with pytest.raises(OptionReferenceError) as e: mcq_to_freeform('Q', opts, 'D')
    assert e.value.rule == 'both' and isinstance(e.value, DataError)
    assert mcq_to_freeform('Q', opts, 'D', refs='rewrite')['reference'] == 'Oxygen; Water'
    assert mcq_to_freeform('Q', opts, 'D', refs='keep')['reference'] == 'Both A and C'
    assert mcq_to_freeform('Q', ['x', 'y', 'z', 'All of the above'], 'D', refs='rewrite')['reference'] == 'all of: x; y; z'
    assert mcq_to_freeform('Q', ['x', 'y', 'z', 'None of the above'], 'D', refs='rewrite')['reference'] == 'none of: x; y; z'
    with pytest.raises(OptionReferenceError, match='cannot be rewritten'):   # 'Both' with four options: which two?
        mcq_to_freeform('Q', ['x', 'y', 'z', 'Both'], 'D', refs='rewrite')
    with pytest.raises(OptionReferenceError, match='cannot be rewritten'):   # names an option that refers itself
        mcq_to_freeform('Q', ['x', 'None of these', 'z', 'A and B'], 'D', refs='rewrite')

def test_hub_mcq_layout(caplog):
    rows = [{'question': 'Q1', 'choices': ['a', 'b', 'c', 'd'], 'answer': 2, 'subject': 'virology'},
            {'question': 'Q2', 'choices': ['a', 'b', 'c', 'All of the above'], 'answer': 3, 'subject': 'virology'},
            {'question': ' ', 'choices': ['a', 'b', 'c', 'd'], 'answer': 0, 'subject': 'virology'},
            {'question': 'Q4', 'choices': ['a', 'b', 'c', 'd'], 'answer': 7, 'subject': 'virology'}]
    with pytest.raises(DataError) as e: load_rlvr_dataset(rows)
    assert "'question' ('question'): rows [2]" in str(e.value)
    assert "1 rows with a bad 'answer': rows [3] (row 3: answer 7 is not one of the options" in str(e.value)
    ds = load_rlvr_dataset(rows, on_bad='skip')
    assert (ds['reference'], ds['subject'], ds['field']) == (['c'], ['Basic Medicine'], ['Applied Sciences'])
    assert load_rlvr_dataset(rows, on_bad='skip', refs='rewrite')['reference'] == ['c', 'all of: a; b; c']
    assert load_rlvr_dataset(rows, on_bad='skip', refs='keep')['reference'] == ['c', 'All of the above']

def test_mcq_bad_options_are_data_errors_with_the_field():
    for args, field, match in [(('q', None, 'A'), 'options', 'the options are missing'),
                               (('q', 5, 'A'), 'options', 'the options are of type int, not a list or a mapping'),
                               (('q', {1: 'x'}, 1), 'options', r'non-string keys \[1\]'), (('q', {1: 'x'}, 0), 'options', 'non-string keys'),
                               (('q', 'abcd', 'B'), 'options', r"the options are a string \('abcd'\)"),
                               (('q', [f'o{i}' for i in range(27)], 'A'), 'options', '27 options: more than the 26 letters A-Z'),
                               (('q', ['x', None], 'B'), 'options', 'option B'), (('q', ['x'], 'B'), 'answer', "answer 'B' is not one of the options \\['A'\\]"),
                               (('q', ['x'], 1), 'answer', 'an index below 1'), ((' ', ['x'], 'A'), 'question', 'question is missing')]:
        with pytest.raises(DataError, match=match) as e: mcq_to_freeform(*args)
        assert e.value.field == field, args

def test_mcq_up_to_26_options_lettered_a_to_z():
    opts = [f'o{i}' for i in range(26)]
    assert mcq_to_freeform('q', opts, 'K')['reference'] == 'o10' and mcq_to_freeform('q', opts, 'z')['reference'] == 'o25'
    assert mcq_to_freeform('q', opts, 11)['reference'] == 'o11'
    assert mcq_to_freeform('q', opts[:11] + ['K and C'], 'L', refs='rewrite')['reference'] == 'o10; o2'   # letters past D name options too
    assert mcq_to_freeform('q', {'1': 'x', '2': 'y'}, '2')['reference'] == 'y'                      # no lettered options: no letter rule

@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=5), st.none(), st.integers()),
       st.one_of(st.none(), st.integers(), st.text(max_size=5),
                 st.lists(st.one_of(st.text(max_size=8), st.none(), st.integers(), st.sampled_from(['All of the above', 'A and B', 'Both'])), max_size=30),
                 st.dictionaries(st.one_of(st.text(max_size=2), st.integers()), st.one_of(st.text(max_size=8), st.none()), max_size=5)),
       st.one_of(st.text(max_size=3), st.integers(-3, 40), st.none(), st.booleans(), st.floats()), st.sampled_from(['drop', 'rewrite', 'keep']))
def test_mcq_to_freeform_is_total(question, options, answer, refs):
    "Any input: a free-form item with non-empty strings, or a DataError naming the field at fault."
    try: rec = mcq_to_freeform(question, options, answer, refs=refs)
    except DataError as e: assert e.field in ('question', 'options', 'answer') and str(e); return
    assert rec['question'] == question.strip() and isinstance(rec['reference'], str) and rec['reference'].strip()

def test_mcq_rows_report_field_and_reason(caplog):
    rows = [{'question': 'Q0', 'choices': ['a', 'b'], 'answer': 1},
            {'question': 'Q1', 'choices': 'ab', 'answer': 1},
            {'question': 'Q2', 'choices': None, 'answer': 0},
            {'question': 'Q3', 'choices': [f'o{i}' for i in range(12)], 'answer': 11},
            {'question': 'Q4', 'choices': ['a', 'b'], 'answer': 'C'},
            {'question': 'Q5', 'choices': ['a', ''], 'answer': 1}]
    with pytest.raises(DataError) as e: load_rlvr_dataset(rows)
    msg = str(e.value)
    assert "3 rows with a bad 'choices': rows [1, 2, 5] (row 1: the options are a string ('ab'), not a list of options; " in msg
    assert "row 2: the options are missing" in msg and "row 5: option B (the answer) is empty" in msg
    assert "1 rows with a bad 'answer': rows [4] (row 4: answer 'C' is not one of the options ['A', 'B'])" in msg
    with caplog.at_level(logging.WARNING, logger='rlvr_nb.data'):
        assert load_rlvr_dataset(rows, on_bad='skip')['reference'] == ['b', 'o11']
    assert "skipped 3 rows with a bad 'choices'" in caplog.text and "1 rows with a bad 'answer'" in caplog.text
    with pytest.raises(DataError, match=r"'options': rows \[0\] \(row 0: the options are a string"):
        load_rlvr_dataset([{'question': 'q', 'options': 'abcd', 'answer': 'A'}])

# --- MMLU files -----------------------------------------------------------------------------------------

def _csv(rows):
    buf = io.StringIO(); csv.writer(buf).writerows(rows); return buf.getvalue()

BIO = [['Which gas do plants absorb?', 'O2', 'CO2', 'N2', 'He', 'B'],
       ['Which hold DNA?', 'Nuclei', 'Mitochondria', 'Chloroplasts', 'All of the above', 'D'],
       ['What is 2, 3?', '1', '2', 'Both A and B', '4', 'C']]
LAW = [['Is a contract needed?', 'Yes', 'No', 'Maybe', 'Never', 'A']]

@pytest.fixture
def mmlu_tree(tmp_path):
    for split in ('test', 'dev'):
        d = tmp_path / 'data' / split; d.mkdir(parents=True)
        (d / f'college_biology_{split}.csv').write_text(_csv(BIO))
        (d / f'professional_law_{split}.csv').write_text(_csv(LAW))
    return tmp_path

def test_mmlu_folder(mmlu_tree):
    for src in (mmlu_tree, mmlu_tree / 'data'):
        ds = load_rlvr_dataset(src, split='test')
        assert ds['reference'] == ['CO2', 'Yes'] and ds['field'] == ['STEM', 'Social Sciences']
        assert ds['source'] == ['mmlu/college_biology', 'mmlu/professional_law'] and ds['subject'] == ['Biology', 'Law']
    recs, stats = read_mmlu(mmlu_tree, 'test')
    assert stats == {'kept': 2, 'all_of_the_above': 1, 'both': 1}
    recs, stats = read_mmlu(mmlu_tree, 'test', refs='rewrite')
    assert [r['reference'] for r in recs][:3] == ['CO2', 'all of: Nuclei; Mitochondria; Chloroplasts', '1; 2']
    assert stats == {'kept': 2, 'all_of_the_above': 1, 'both': 1}

def test_mmlu_zip_and_file(mmlu_tree, tmp_path):
    z = tmp_path / 'mmlu.zip'
    with zipfile.ZipFile(z, 'w') as f:
        for p in (mmlu_tree / 'data').rglob('*.csv'): f.write(p, p.relative_to(mmlu_tree).as_posix())
    assert load_rlvr_dataset(z, split='test')['reference'] == ['CO2', 'Yes']
    assert load_rlvr_dataset(z, split='dev')['reference'] == ['CO2', 'Yes']
    one = mmlu_tree / 'data' / 'test' / 'college_biology_test.csv'
    ds = load_rlvr_dataset(one)
    assert ds['reference'] == ['CO2'] and ds['subject'] == ['Biology']
    with pytest.raises(DataError, match="no MMLU files for split 'val'"): read_mmlu(z, 'val')
    with pytest.raises(DataError, match="MMLU has the splits 'dev', 'val' and 'test', not 'train'"): load_rlvr_dataset(z)
    with pytest.raises(DataError, match="not 'train'"): load_rlvr_dataset(mmlu_tree)

def test_mmlu_bad_rows(tmp_path):
    p = tmp_path / 'anatomy_test.csv'
    p.write_text(_csv(BIO[:1] + [['', 'a', 'b', 'c', 'd', 'A'], ['Q', 'a', 'b', 'c', 'd', 'E'], ['Q', ' ', 'b', 'c', 'd', 'A']]))
    with pytest.raises(DataError) as e: load_rlvr_dataset(p)
    msg = str(e.value)
    assert '3 bad MMLU rows' in msg and 'row 1 ' in msg and 'row 2 ' in msg and 'row 3 ' in msg
    assert 'question is missing' in msg and "answer 'E' is not one of the options" in msg and 'option A (the answer) is empty' in msg
    ds = load_rlvr_dataset(p, on_bad='skip')
    assert ds['reference'] == ['CO2'] and ds['field'] == ['Applied Sciences']

def test_mmlu_wrong_field_count(tmp_path):
    p = tmp_path / 'anatomy_test.csv'
    p.write_text(_csv([['Q', 'a', 'b', 'c', 'd', 'A'], ['Q', 'a', 'b', 'A']]))
    with pytest.raises(DataError, match=r'row 1 .*4 fields, expected 6'): read_mmlu(p)

def test_mmlu_mapping_is_one_complete_table():
    from importlib import resources
    cats = json.loads(resources.files('rlvr_nb').joinpath('data', 'mmlu_mapping.json').read_text())
    assert set(MMLU_TO_SUBJECT) == set(cats) and len(cats) == 57
    assert set(MMLU_TO_SUBJECT.values()) <= set(SUBJECT_TO_FIELD)
    fields = {k: field_of(mmlu_subject(k)) for k in cats}
    assert set(fields.values()) == set(FIELDS)
    assert fields['clinical_knowledge'] == fields['virology'] == 'Applied Sciences'
    assert fields['management'] == 'Social Sciences' and fields['miscellaneous'] == 'Others'
    assert mmlu_subject('no_such_subject') == 'Unclassified'

# --- unreadable files: the row is named, skipped under on_bad='skip' ------------------------------------

class _Records(logging.Handler):
    "The warnings of rlvr_nb.data (caplog is function-scoped, which hypothesis refuses)."
    def __init__(self): super().__init__(logging.WARNING); self.text = ''
    def emit(self, record): self.text += record.getMessage() + '\n'

def _outcome(p, **kw):
    "What loading `p` gives: ('ok', rows, warnings) or ('error', message without the folder, '')."
    h = _Records(); lg = logging.getLogger('rlvr_nb.data'); lg.addHandler(h)
    try: return 'ok', load_rlvr_dataset(p, **kw).to_list(), h.text
    except DataError as e: return 'error', str(e).replace(str(p.parent) + '/', ''), ''
    finally: lg.removeHandler(h)

def _named_lines(msg): return [int(n) for n in re.findall(r'\b(?:line|index) (\d+):', msg)]

def _check_one_bad(folder, name, lines, n, unit='line'):
    """`lines` (bytes, endings kept) with line/index `n` bad: raising names `n` and only `n`; skipping gives what the file
    without it gives, and the warning names it."""
    p = folder / 'bad' / name; p.parent.mkdir(exist_ok=True); p.write_bytes(b''.join(lines))
    ref = folder / 'ref' / name; ref.parent.mkdir(exist_ok=True)
    ref.write_bytes(b''.join(l for i, l in enumerate(lines, 1) if i != n))
    kind, msg, _ = _outcome(p)
    assert kind == 'error' and _named_lines(msg) == [n] and f'1 unreadable row ({unit} {n}:' in msg, msg
    got, want = _outcome(p, on_bad='skip'), _outcome(ref, on_bad='skip')
    assert got[:2] == want[:2]
    if got[0] == 'ok': assert f'skipped 1 unreadable row ({unit} {n}:' in got[2]
    else: assert f'unreadable row ({unit} {n}:' in got[1]

cell = st.text(alphabet=st.characters(whitelist_categories=('Lu', 'Ll', 'Nd'), whitelist_characters=' ?éß中'), min_size=1, max_size=12).filter(str.strip)

def _corrupt_bytes(line: str, how: str, at: int, nl: str) -> bytes:
    body = line
    if how == 'extra': return (body + ',extra' + nl).encode()
    if how == 'quote': return ('"' + body + nl).encode()                       # opens a quoted field never closed
    if how == 'quote2': return (body.replace(',', ',"', 1) + nl).encode()       # the same in the second field
    k = at % (len(body) + 1)
    return body[:k].encode() + {'utf8': b'\xff', 'utf8_cut': b'\xe4\xb8'}[how] + body[k:].encode() + nl.encode()

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=2, max_size=6), st.data(), st.sampled_from(['\n', '\r\n']), st.booleans())
def test_csv_corrupt_line_is_named_and_skipped(rows, data, nl, final_newline):
    how = data.draw(st.sampled_from(['extra', 'quote', 'quote2', 'utf8', 'utf8_cut']), label='how')
    n = data.draw(st.integers(2, len(rows) + 1), label='line')
    texts = ['question,answer'] + [f'q {q},a {a}' for q, a in rows]     # letters: pandas reads '0' as a number
    lines = [(t + nl).encode() for t in texts]
    if not final_newline: lines[-1] = lines[-1][:-len(nl)]
    lines[n - 1] = _corrupt_bytes(texts[n - 1], how, data.draw(st.integers(0, 20)), nl if (n < len(lines) or final_newline) else '')
    with tempfile.TemporaryDirectory() as d: _check_one_bad(Path(d), 'data.csv', lines, n)

json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3), max_leaves=4)

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=2, max_size=6), st.data(), st.sampled_from(['.jsonl', '.json']), st.booleans())
def test_jsonl_corrupt_line_is_named_and_skipped(rows, data, suffix, ascii):
    how = data.draw(st.sampled_from(['truncate', 'not_object', 'garbage', 'utf8']), label='how')
    n = data.draw(st.integers(1, len(rows)), label='line')
    texts = [json.dumps({'question': q, 'answer': 'a ' + a}, ensure_ascii=ascii) for q, a in rows]
    lines = [(t + '\n').encode() for t in texts]
    t = texts[n - 1]
    if how == 'truncate': bad = t[:data.draw(st.integers(1, len(t) - 1))].encode()
    elif how == 'not_object': bad = json.dumps(data.draw(json_value.filter(lambda v: v is not None and not isinstance(v, dict)))).encode()
    elif how == 'garbage': bad = data.draw(st.sampled_from(['x', '{', '}', ',', "'"])).encode() + t.encode()
    else: k = data.draw(st.integers(0, len(t))); bad = t[:k].encode() + b'\xff' + t[k:].encode()
    if suffix == '.json' and n == 1 and (bad.lstrip()[:1] == b'[' or bad.strip() == b'{'): return   # that makes it one JSON document
    lines[n - 1] = bad + b'\n'
    with tempfile.TemporaryDirectory() as d: _check_one_bad(Path(d), 'data' + suffix, lines, n)

@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=2, max_size=6), st.data())
def test_json_list_non_object_is_named_by_index(rows, data):
    i = data.draw(st.integers(0, len(rows) - 1), label='index')
    items = [{'question': q, 'answer': 'a ' + a} for q, a in rows]
    items[i] = data.draw(json_value.filter(lambda v: v is not None and not isinstance(v, dict)), label='item')
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'data.json'; p.write_text(json.dumps(items))
        kind, msg, _ = _outcome(p)     # `datasets` reads some arrays ([], [[null]]) as an empty row: then a row without a question
        assert kind == 'error' and (_named_lines(msg) == [i] and f'(index {i}: ' in msg or f"'question'): rows [{i}]" in msg), msg
        ref = Path(d) / 'ref' / 'data.json'; ref.parent.mkdir(); ref.write_text(json.dumps(items[:i] + items[i + 1:]))
        got, want = _outcome(p, on_bad='skip'), _outcome(ref, on_bad='skip')
        assert got[:2] == want[:2]

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=4), st.sampled_from([None, 1]), st.data())
def test_json_syntax_error_names_line_and_column(rows, indent, data):
    text = json.dumps([{'question': q, 'answer': 'a ' + a} for q, a in rows], indent=indent)
    k = data.draw(st.integers(1, len(text) - 1), label='at')
    text = text[:k] + data.draw(st.sampled_from(['', ',', '}', ']', '{', ':', '"', 'x']), label='insert') + text[k + data.draw(st.integers(0, 1), label='delete'):]
    try: json.loads(text); event('still valid JSON'); return
    except json.JSONDecodeError as e: where = f'line {e.lineno} column {e.colno}'
    if not text.lstrip().startswith('['): return
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'data.json'; p.write_text(text)
        if _outcome(p)[0] == 'ok': event('datasets reads it'); return   # ujson, which datasets reads arrays with, forgives a trailing comma
        event('refused')
        for on_bad in ('raise', 'skip'):               # a syntax error in a JSON array has no row to skip
            kind, msg, _ = _outcome(p, on_bad=on_bad)
            assert kind == 'error' and f'not valid JSON at {where}' in msg, (text, msg)

@pytest.mark.parametrize('name', ['data.json', 'data.jsonl', 'data.csv', 'data.parquet'])
@pytest.mark.parametrize('content', ['', ' \n\n'])
def test_empty_file(tmp_path, name, content):
    p = tmp_path / name; p.write_text(content)
    with pytest.raises(DataError, match=f'^{re.escape(str(p))}: empty file$'): load_rlvr_dataset(p, on_bad='skip')

@pytest.mark.parametrize('name,content', [('data.csv', 'question,answer\n'), ('data.json', '[]')])
def test_header_only_or_empty_list(tmp_path, name, content):
    p = tmp_path / name; p.write_text(content)
    with pytest.raises(DataError, match='data.*: no rows$'): load_rlvr_dataset(p)

def test_unreadable_rows_examples(tmp_path):
    p = tmp_path / 'd.csv'
    p.write_bytes(b'question,answer\nq1,a1\n"q2,a2\nq3,a3,x\nq4,\xff\nq5,a5\n')
    with pytest.raises(DataError) as e: load_rlvr_dataset(p)
    msg = str(e.value)
    assert msg.startswith(f'{p}: 3 unreadable rows (') and _named_lines(msg) == [3, 4, 5]
    assert 'line 3: a quote opened here is never closed' in msg and 'line 4: 3 fields where the header has 2' in msg
    assert 'line 5: not valid UTF-8 (byte 0xff' in msg
    assert isinstance(e.value.__cause__, Exception)                         # the datasets error stays as the cause
    assert load_rlvr_dataset(p, on_bad='skip')['question'] == ['q1', 'q5']
    p.write_text('"question,answer\nq1,a1\n')                                # the header itself: nothing to skip to
    with pytest.raises(DataError, match=r'line 1 \(the header\): a quote opened here is never closed'): load_rlvr_dataset(p, on_bad='skip')
    p.write_text('question,answer\nq1,a1,x\nq2,a2,y\n')                     # pandas would take the first field for an index
    with pytest.raises(DataError, match=r'2 unreadable rows \(line 2: .*; line 3: '): load_rlvr_dataset(p)
    j = tmp_path / 'd.jsonl'
    j.write_text('{"question": "q1", "answer": "a"}\n\n{"question": "q2",\n[1, 2]\n{"question": "q3", "answer": "a"}\n')
    with pytest.raises(DataError, match=r"2 unreadable rows \(line 3: not valid JSON \(column \d+: .*\); line 4: an array, not an object\)"):
        load_rlvr_dataset(j)
    assert load_rlvr_dataset(j, on_bad='skip')['question'] == ['q1', 'q3']
    j.write_text('not json\n[]\n')
    with pytest.raises(DataError, match=r'no usable rows \(skipped 2 unreadable rows \(line 1: .*; line 2: '): load_rlvr_dataset(j, on_bad='skip')
    a = tmp_path / 'd.json'
    a.write_text('[{"question": "q1", "answer": "a"},\n "q2",\n {"question": "q3", "answer": "a"}]')
    with pytest.raises(DataError, match=r'1 unreadable row \(index 1: a string, not an object\)'): load_rlvr_dataset(a)
    assert load_rlvr_dataset(a, on_bad='skip')['question'] == ['q1', 'q3']
    a.write_text('[{"question": "q1", "answer": "a"},\n {"question": }]')
    for on_bad in ('raise', 'skip'):
        with pytest.raises(DataError, match='not valid JSON at line 2 column 15: Expecting value'): load_rlvr_dataset(a, on_bad=on_bad)
    a.write_bytes(b'[{"question": "q1", "answer": "a"},\n {"question": "q\xff", "answer": "a"}]')
    with pytest.raises(DataError, match='not valid UTF-8 at line 2 column 17'): load_rlvr_dataset(a, on_bad='skip')

def test_csv_stray_quote_among_quoted_fields(tmp_path):
    "A stray quote pairs with a later one: valid CSV, but datasets' chunks disagree on a column's type; the record is named."
    rows = [[i, f'Why {i}? Say "so", twice', f'a{i}'] for i in range(12_000)]
    buf = io.StringIO(); csv.writer(buf).writerows([['id', 'question', 'answer']] + rows)
    lines = buf.getvalue().splitlines(keepends=True)
    lines[11_001] = '"oops,x,y\n'                                     # line 11002 opens a quote that the next line closes
    p = tmp_path / 'q.csv'; p.write_text(''.join(lines))
    with pytest.raises(DataError, match=r"1 unreadable row \(line 11002: 'oops,x,y.*' in column 'id' is not int64 like the rest "
                                        r"of the column \(lines 11002-11003 read as one row: a quote that is never closed\?\)\)"):
        load_rlvr_dataset(p)
    ds = load_rlvr_dataset(p, on_bad='skip')                         # both lines go: the quote made them one record
    assert len(ds) == 11_998 and ds['reference'][10_999:11_001] == ['a10999', 'a11002']

def test_valid_json_that_arrow_cannot_tabulate_is_read_by_row(tmp_path):
    p = tmp_path / 'd.jsonl'                               # one column, two types: JSON is fine, one Arrow table is not
    p.write_text('{"question": "q1", "answer": "a", "x": {"k": 1}}\n{"question": "q2", "answer": "b", "x": "s"}\n')
    assert load_rlvr_dataset(p)['reference'] == ['a', 'b']

def test_mmlu_unreadable_lines(tmp_path):
    p = tmp_path / 'anatomy_test.csv'
    p.write_bytes(_csv(BIO[:1]).encode() + b'"Q,a,b,c,d,A\n' + b'Q\xff,a,b,c,d,A\n' + _csv(LAW).encode())
    with pytest.raises(DataError) as e: load_rlvr_dataset(p)
    assert 'line 2 (' in str(e.value) and 'never closed' in str(e.value) and 'line 3 (' in str(e.value) and 'not valid UTF-8' in str(e.value)
    assert load_rlvr_dataset(p, on_bad='skip')['reference'] == ['CO2', 'Yes']

def test_good_files_unchanged_by_the_row_checks(tmp_path):
    "A good file loads exactly as `datasets` reads it: the stdlib reader is for failures only."
    import datasets
    df = pd.DataFrame(ROWS + [{'question': 'Say "hi", twice', 'answer': 'hi, hi', 'subject': 'Linguistics'}])
    for ext, write in [('csv', lambda p: df.to_csv(p, index=False)), ('jsonl', lambda p: df.to_json(p, orient='records', lines=True)),
                       ('json', lambda p: df.to_json(p, orient='records'))]:
        p = tmp_path / f'd.{ext}'; write(p)
        raw = datasets.load_dataset('csv' if ext == 'csv' else 'json', data_files=str(p), split='train').to_list()
        ds = load_rlvr_dataset(p)
        assert ds['question'] == [r['question'] for r in raw] and ds['reference'] == [r['answer'] for r in raw]

# --- limit, duplicate ids -------------------------------------------------------------------------------

def test_limit_zero_and_negative():
    rows = [{'question': f'q{i}', 'answer': f'a{i}'} for i in range(3)]
    empty = load_rlvr_dataset(rows, limit=0)
    assert len(empty) == 0 and empty.column_names == SCHEMA and empty.features == load_rlvr_dataset(rows).features
    assert len(load_rlvr_dataset(rows, limit=3)) == len(load_rlvr_dataset(rows, limit=10)) == len(load_rlvr_dataset(rows)) == 3
    for bad in (-1, -5, 1.5, True, '2'):
        with pytest.raises(ValueError, match='limit must be None'): load_rlvr_dataset(rows, limit=bad)

@given(st.integers(0, 8), st.integers(0, 8))
@settings(max_examples=20, deadline=None)
def test_limit_counts_good_rows(n, limit):
    rows = [{'question': f'q{i}', 'answer': f'a{i}' if i % 3 else ''} for i in range(n)]   # every third row is bad
    good = [r['question'] for r in rows if r['answer']]
    try: ds = load_rlvr_dataset(rows, on_bad='skip', limit=limit)
    except DataError: assert not rows or (limit > 0 and not good); return
    assert ds['question'] == good[:limit]

def test_duplicate_ids_warn():
    rows = [{'id': i % 3, 'question': f'q{i}', 'answer': 'a'} for i in range(7)] + [{'id': None, 'question': 'q', 'answer': 'a'}] * 2
    with pytest.warns(DataWarning, match=r"records: 3 ids occur more than once in 'id' \(7 rows; e\.g\. 0, 1, 2\): all rows are kept"):
        ds = load_rlvr_dataset(rows)
    assert len(ds) == 9
    with pytest.warns(DataWarning, match=r"1 id occurs more than once in 'unique_id' \(2 rows; e\.g\. 'x/1'\)"):
        load_rlvr_dataset([{'unique_id': 'x/1', 'problem': 'p', 'answer': '1'}] * 2)
    with pytest.warns(DataWarning, match="in 'key'"):
        load_rlvr_dataset([{'key': [1], 'question': 'q', 'answer': 'a'}] * 2, columns={'id': 'key'})   # unhashable ids too
    with warnings.catch_warnings():
        warnings.simplefilter('error', DataWarning)                                   # the strict mode
        load_rlvr_dataset([{'id': i, 'question': 'q', 'answer': 'a'} for i in range(3)])  # distinct ids: silent
        with pytest.raises(DataWarning): load_rlvr_dataset([{'id': 1, 'question': 'q', 'answer': 'a'}] * 2)

# --- the real files (CI has ../shared/data) -------------------------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason='../shared/data is not beside the checkout')

@needs_shared
def test_real_mmlu_zip():
    recs, stats = read_mmlu(SHARED / 'mmlu.zip', 'test')
    assert stats.total() == 14042 and stats['kept'] == len(recs) > 13500
    assert sum(stats[r] for r in OPTION_REFERENCE_RULES) == 14042 - stats['kept'] > 100
    assert {r['field'] for r in recs} == set(FIELDS)
    assert all(r['reference'].strip() and r['question'].strip() for r in recs)

@needs_shared
def test_real_math500():
    ds = load_rlvr_dataset(SHARED / 'math500.parquet')
    assert len(ds) == 500 and set(ds['field']) == {'STEM'} and set(ds['subject']) == {'Mathematics'}
    assert not any('boxed{}' in q for q in ds['question'])
    assert ds[0]['reference'] == '\\left( 3, \\frac{\\pi}{2} \\right)'
    assert ds[0]['prompt'][1]['content'].startswith('Convert the point $(0,3)$')

# --- reference kinds ------------------------------------------------------------------------------------

@pytest.mark.parametrize('ref,kind', [('331', 'number'), ('\\frac{11}{2}', 'number'), ('20 years.', 'number'),
                                      ('1+2\\sqrt{3}', 'expression'), ('Daoism', 'term'), ('Adam Smith', 'term'),
                                      ('The short-run Phillips curve is downward sloping.', 'text'), (None, 'text'), ('', 'text')])
def test_reference_kind(ref, kind):
    assert reference_kind(ref) == kind

@given(st.one_of(st.text(), st.none(), st.integers()))
def test_reference_kind_total(x):
    assert reference_kind(x) in ('number', 'term', 'expression', 'text')
