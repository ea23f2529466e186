"""Checks moved out of `nbs/02b_verify_sets.ipynb`, where each function keeps one example: refused labels and
references, a file that is not JSON lines, a JSON-lines file with an invalid row, options of a built set, the MATH-500
set behind its spec, and MMLU rows spread over the subjects."""
import json, tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.verify_sets import hardverify_rows, labelled_rows, read_verification_set, verification_set

DATA = Path(__file__).resolve().parent.parent.parent / 'shared' / 'data'   # ../shared beside the checkout (CI)

def test_rows_refuse_bad_labels_and_references():
    test_fail(lambda: labelled_rows([{'question': 'q', 'answer': 'a', 'completion': 'a', 'label': 'maybe'}]), contains="row 0: label 'maybe'")
    test_fail(lambda: hardverify_rows([{'question': 'q', 'ground_truth': '', 'fn_output': 'x', 'tn_output': 'y'}]), contains="row 0: 'ground_truth'")

def test_a_line_that_is_not_json():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'vb.jsonl'
        p.write_text('{"question": "q", "answer": "a", "completion": "a", "label": 1}\nnot json\n')
        test_fail(lambda: read_verification_set(p), contains='line 2 is not JSON')

def test_verification_set_options_and_math500():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'vb.jsonl'; p.write_text(''.join(json.dumps({'question': f'q{i}', 'answer': 'a', 'completion': 'a' if i % 2 else 'b', 'label': i % 2}) + '\n' for i in range(10)))
        test_fail(lambda: verification_set(p, wrong_per_question=2), contains='options of a built set')
    math500 = DATA / 'math500.parquet'
    if math500.exists(): test_eq(len(verification_set(f'math500:{math500}', limit=10)) > 20, True)

def test_a_jsonl_file_with_an_invalid_row():
    from rlvr_nb.verify_sets import label_counts
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / 'vb.jsonl'; p.write_text('{"question": "q", "answer": "a", "completion": "a", "label": 1}\n{"question": "q", "answer": "a", "completion": "", "label": "C"}\n')
        test_eq(label_counts(read_verification_set(p)), {'n': 2, 'YES': 1, 'NO': 1, 'invalid': 1})

def test_mmlu_rows_spread_over_the_subjects():
    from rlvr_nb.verify_sets import mmlu_verification_rows
    mmlu_zip = DATA / 'mmlu.zip'
    if mmlu_zip.exists():
        mm = mmlu_verification_rows(mmlu_zip, limit=200, seed=0)
        test_eq(len({r['source'] for r in mm}) > 40, True)               # spread over the subjects, not the first file
