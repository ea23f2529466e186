"""Checks moved out of `nbs/00_data.ipynb`, where each function keeps one example: final steps, the subject table,
multiple choice to free form (option references, letters, refusals), the MMLU mapping, the released layout, bad rows
and unreadable files, duplicate ids, multiple-choice rows, the real MMLU and MATH-500 files, and reference kinds; then
MMLU's row count, an unreadable JSON-lines file and a bad `choices` row skipped, and a letter combination."""
import tempfile, warnings
from pathlib import Path

import datasets
from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.data import (FIELDS, MMLU_CATEGORIES, MMLU_TO_SUBJECT, POLICY_SYSTEM_PROMPT, SUBJECT_TO_FIELD, DataError,
                          DataWarning, OptionReferenceError, field_of, final_step, load_rlvr_dataset, mcq_to_freeform,
                          mmlu_subject, option_reference, reference_kind)

DATA = Path(__file__).resolve().parent.parent.parent / 'shared' / 'data'   # ../shared beside the checkout (CI)
datasets.logging.set_verbosity(datasets.logging.CRITICAL)

def test_final_step():
    test_eq(final_step("a\r\nb  \r\n \r\n"), "b")
    test_eq(final_step(""), "")
    test_eq(final_step(None), "")
    test_eq(final_step("single line"), "single line")

def test_subject_table():
    test_eq(len(SUBJECT_TO_FIELD), 49)
    test_eq(field_of('320'), 'Applied Sciences')
    test_eq(field_of('Astrology'), 'Others')

def test_mcq_to_freeform_option_references():
    test_eq(mcq_to_freeform("q", {'A': 'x', 'B': ' y '}, 1)['reference'], 'y')
    test_fail(lambda: mcq_to_freeform("q", ["x", "y"], "E"), contains="not one of the options")
    test_fail(lambda: mcq_to_freeform("q", ["x", "y"], 5), contains="not one of the options")
    test_fail(lambda: mcq_to_freeform("q", ["x", "  "], "B"), contains="option B (the answer) is empty")
    opts = ["Mitochondria", "Chloroplasts", "Ribosomes", "All of the above"]
    try: mcq_to_freeform("q", opts, "D")
    except OptionReferenceError as e: test_eq(e.rule, 'all_of_the_above')
    test_eq(mcq_to_freeform("q", opts, "D", refs='keep')['reference'], 'All of the above')
    test_eq(mcq_to_freeform("q", ["x", "y", "z", "Both A and C."], "D", refs='rewrite')['reference'], 'x; z')
    test_eq(mcq_to_freeform("q", ["x", "y", "z", "None of these"], "D", refs='rewrite')['reference'], 'none of: x; y; z')
    test_eq(mcq_to_freeform("q", ["x.", "y", "Neither of these"], "C", refs='rewrite')['reference'], 'none of: x; y')
    test_fail(lambda: mcq_to_freeform("q", ["x", "All of the above", "y", "A and B"], "D", refs='rewrite'), contains="cannot be rewritten")
    test_eq(mcq_to_freeform("q", ["x", "y", "z", "All of the above"], "A")['reference'], 'x')      # a referring distractor is harmless
    for keep in ["Both instinctive and learned", "Neither position nor momentum can be known", "B", "Blood type A",
                 "f has all of its relative extrema on the interval", "Both 2 and 3"]:
        test_eq(option_reference(keep), None)
    test_eq(option_reference("(a) and (b) both in the same way."), ('both', ['A', 'B']))
    test_eq(option_reference("Any one or combinations of the above methods"), ('either', []))

def test_mcq_to_freeform_letters_and_refusals():
    opts12 = [f"o{i}" for i in range(12)]                                   # letters run on past J
    test_eq(mcq_to_freeform("q", opts12, "K")['reference'], 'o10')
    test_fail(lambda: mcq_to_freeform("q", [f"o{i}" for i in range(27)], "A"), contains="27 options: more than the 26 letters A-Z")
    test_fail(lambda: mcq_to_freeform("q", None, "A"), contains="the options are missing")
    test_fail(lambda: mcq_to_freeform("q", {1: "x"}, 1), contains="non-string keys [1]")
    test_fail(lambda: mcq_to_freeform("q", "abcd", "B"), contains="the options are a string ('abcd')")
    for args, field in [(("q", "abcd", "B"), 'options'), (("q", ["x"], "B"), 'answer'), (("", ["x"], "A"), 'question')]:
        try: mcq_to_freeform(*args)
        except DataError as e: test_eq(e.field, field)

def test_mmlu_mapping():
    test_eq(set(MMLU_TO_SUBJECT), set(MMLU_CATEGORIES))                      # all 57 subjects, no more
    test_eq(set(MMLU_TO_SUBJECT.values()) - set(SUBJECT_TO_FIELD), set())     # every target is a paper subject
    test_eq(field_of(mmlu_subject('professional law')), 'Social Sciences')

def test_released_layout():
    released = [{'query': [{'role': 'system', 'content': 'sys'}, {'role': 'user', 'content': 'What is the SI unit of force?'}],
                 'label': 'newton (N)', 'subject_id': 140},
                {'query': [{'role': 'system', 'content': 'sys'}, {'role': 'user', 'content': 'Who wrote Hamlet?'}],
                 'label': 'William Shakespeare', 'subject_id': 750}]
    ds = load_rlvr_dataset(released)
    test_eq(ds[0]['prompt'][0]['content'], POLICY_SYSTEM_PROMPT)
    test_eq(ds[0]['prompt'][1], {'role': 'user', 'content': 'What is the SI unit of force?'})
    test_eq(ds['field'], ['STEM', 'Humanities'])

def test_bad_rows_columns_and_limit():
    rows = [{'question': 'q0', 'answer': 'a0'}, {'question': '  ', 'answer': 'a1'}, {'question': 'q2', 'answer': None},
            {'question': 'q3', 'answer': 3}]
    test_fail(lambda: load_rlvr_dataset(rows), contains="rows [1]")
    test_fail(lambda: load_rlvr_dataset([{'foo': 1}]), contains="no question column")
    test_eq(load_rlvr_dataset([{'q': 'x', 'r': 'y'}], columns={'question': 'q', 'reference': 'r'})['reference'], ['y'])
    test_eq(len(load_rlvr_dataset(rows, on_bad='skip', limit=1)), 1)
    test_eq(load_rlvr_dataset(rows, on_bad='skip', limit=0).column_names, ['prompt', 'question', 'reference', 'subject', 'field', 'level', 'source'])
    test_eq(len(load_rlvr_dataset(rows, on_bad='skip', limit=0)), 0)
    test_fail(lambda: load_rlvr_dataset(rows, limit=-1), contains="limit must be None (all rows) or an int >= 0")

def test_unreadable_files():
    tmp = Path(tempfile.mkdtemp())
    bad_csv = tmp / 'bad.csv'
    bad_csv.write_bytes(b'question,answer\nq1,a1\nq2,a2,extra\n"q3,a3\nq4,a4\n')
    test_fail(lambda: load_rlvr_dataset(bad_csv), contains='line 4: a quote opened here is never closed')
    bad_utf8 = tmp / 'utf8.csv'
    bad_utf8.write_bytes(b'question,answer\nq1,a1\nq2,\xff\n')
    test_fail(lambda: load_rlvr_dataset(bad_utf8), contains='line 3: not valid UTF-8')
    bad_jsonl = tmp / 'bad.jsonl'
    bad_jsonl.write_text('{"question": "q1", "answer": "a1"}\n{"question": "q2", \n[1, 2]\n{"question": "q4", "answer": "a4"}\n')
    test_fail(lambda: load_rlvr_dataset(bad_jsonl), contains='line 2: not valid JSON')
    test_fail(lambda: load_rlvr_dataset(bad_jsonl), contains='line 3: an array, not an object')
    bad_list = tmp / 'list.json'
    bad_list.write_text('[{"question": "q0", "answer": "a0"},\n "q1",\n {"question": "q2", "answer": "a2"}]')
    test_fail(lambda: load_rlvr_dataset(bad_list), contains='index 1: a string, not an object')
    test_eq(load_rlvr_dataset(bad_list, on_bad='skip')['question'], ['q0', 'q2'])
    broken = tmp / 'broken.json'
    broken.write_text('[{"question": "q0", "answer": "a0"},\n {"question": }]')
    test_fail(lambda: load_rlvr_dataset(broken, on_bad='skip'), contains='not valid JSON at line 2 column 15')
    for name in ('empty.json', 'empty.jsonl', 'empty.csv'):
        (tmp / name).write_text('')
        test_fail(lambda: load_rlvr_dataset(tmp / name), contains=f'{tmp / name}: empty file')
    (tmp / 'header.csv').write_text('question,answer\n')
    test_fail(lambda: load_rlvr_dataset(tmp / 'header.csv'), contains='header.csv: no rows')

def test_duplicate_ids_warn_or_refuse():
    dups = [{'id': i % 2, 'question': f'q{i}', 'answer': f'a{i}'} for i in range(4)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        test_eq(len(load_rlvr_dataset(dups)), 4)                                   # kept, with a warning
    test_eq([str(w.message) for w in caught if issubclass(w.category, DataWarning)],
            ["records: 2 ids occur more than once in 'id' (4 rows; e.g. 0, 1): all rows are kept"])
    with warnings.catch_warnings():
        warnings.simplefilter('error', DataWarning)                                # the strict mode
        test_fail(lambda: load_rlvr_dataset(dups), contains='2 ids occur more than once')

def test_multiple_choice_rows():
    mcq = [{'question': 'Which gas do plants absorb?', 'subject': 'high_school_biology', 'choices': ['O2', 'CO2', 'N2', 'He'], 'answer': 1},
           {'question': 'Which hold DNA?', 'subject': 'college_biology', 'choices': ['Nuclei', 'Mitochondria', 'Chloroplasts', 'All of the above'], 'answer': 3}]
    test_eq(load_rlvr_dataset(mcq, refs='rewrite')['reference'][1], 'all of: Nuclei; Mitochondria; Chloroplasts')
    test_fail(lambda: load_rlvr_dataset([{**mcq[0], 'answer': 9}]), contains="1 rows with a bad 'answer': rows [0] (row 0: answer 9 is not one of the options")
    test_fail(lambda: load_rlvr_dataset([{**mcq[0], 'choices': 'abcd'}]), contains="1 rows with a bad 'choices': rows [0] (row 0: the options are a string")
    mmlu_zip = DATA / 'mmlu.zip'
    if mmlu_zip.exists(): test_fail(lambda: load_rlvr_dataset(mmlu_zip), contains="MMLU has the splits 'dev', 'val' and 'test', not 'train'")

def test_real_files_when_present():
    if (DATA / 'math500.parquet').exists():
        math500 = load_rlvr_dataset(DATA / 'math500.parquet', split='test')
        test_eq(len(math500), 500)
        test_eq(set(math500['field']), {'STEM'})
        assert not any('\\boxed{}' in q for q in math500['question'])
    if (DATA / 'mmlu.zip').exists():
        mmlu = load_rlvr_dataset(DATA / 'mmlu.zip', split='test')
        test_eq(len(mmlu) > 13500, True)
        test_eq(set(mmlu['field']) <= set(FIELDS), True)

def test_reference_kinds():
    for ref, kind in [('331', 'number'), ('\\frac{11}{2}', 'number'), ('2\\sqrt{5}', 'number'), ('15\\mbox{ cm}^2', 'number'),
                      ('76^\\circ', 'number'), ('20 years.', 'number'), ('\\$32,\\!348', 'number'), ('2516_8', 'number'), ('-0.5', 'number'),
                      ('1+2\\sqrt{3}', 'expression'), ('-2,1', 'expression'), ('(2,12) \\cup (12,102)', 'expression'), ('6+9i', 'expression'),
                      ('x^5 - x^4 + x^3 - x^2 + x - 1', 'expression'), ('\\left( 3, \\frac{\\pi}{2} \\right)', 'expression'),
                      ('Daoism', 'term'), ('Chorion villus sampling (CVS)', 'term'), ('mediator variable.', 'term'), ('\\text{Evelyn}', 'expression'),
                      ('Not wrong, Not wrong', 'text'), ('The short-run Phillips curve is downward sloping.', 'text'), ('', 'text'), (None, 'text')]:
        test_eq((ref, reference_kind(ref)), (ref, kind))

def test_real_references_where_string_rules_fail():
    "Real references (MATH-500 and MMLU items, looked up by their text) against correct answers in another form and two wrong answers."
    import pandas as pd
    from rlvr_nb.verify import contains_reference, jaccard_reward, math_equivalent
    math500 = load_rlvr_dataset(DATA / 'math500.parquet', split='test') if (DATA / 'math500.parquet').exists() else None
    mmlu = load_rlvr_dataset(DATA / 'mmlu.zip', split='test') if (DATA / 'mmlu.zip').exists() else None
    examples = [  # (real reference, a final step, is the response correct?)
        ('\\frac{11}{2}', 'Therefore, the answer is 5.5', True),
        ('\\left( 3, \\frac{\\pi}{2} \\right)', 'Therefore, the answer is $(3, \\pi/2)$', True),
        ('76^\\circ', 'Therefore, the answer is 76 degrees.', True),
        ('20 years.', 'Therefore, the answer is 20 years', True),
        ('Chorion villus sampling (CVS)', 'Therefore, the answer is CVS (chorionic villus sampling).', True),
        ('Not wrong, Not wrong', 'Therefore, the answer is: neither scenario is morally wrong.', True),
        ('46', 'Therefore, the answer is 146', False),
        ('Daoism', 'Therefore, the answer is Confucianism, not Daoism', False),
    ]
    known = {r for d in (math500, mmlu) if d is not None for r in d['reference']}
    rows = [{'reference': ref, 'final step': resp, 'correct': ok, 'contains': contains_reference(resp, ref),
             'jaccard': round(jaccard_reward(resp, ref), 2), 'math_equivalent': math_equivalent(resp, ref)}
            for ref, resp, ok in examples if not known or ref in known]
    fails = pd.DataFrame(rows)
    if known:
        test_eq(len(fails), len(examples))                                       # every reference above is a real one
        test_eq(((fails.contains == 1.0) != fails.correct).sum() >= 6, True)      # the substring rule is wrong on most of them

def test_read_mmlu_counts_every_test_row():
    "Moved from the notebook's `read_mmlu` example, which keeps the counts' print."
    from rlvr_nb.data import read_mmlu
    mmlu_zip = DATA / 'mmlu.zip'
    if mmlu_zip.exists():
        recs, stats = read_mmlu(mmlu_zip, 'test')
        test_eq(stats.total(), 14042)
        test_eq(recs[0]['source'], 'mmlu/abstract_algebra')

def test_unreadable_jsonl_rows_skipped():
    "Moved from the notebook's unreadable-file example, which keeps the CSV."
    tmp = Path(tempfile.mkdtemp())
    bad_jsonl = tmp / 'bad.jsonl'
    bad_jsonl.write_text('{"question": "q1", "answer": "a1"}\n{"question": "q2", \n[1, 2]\n{"question": "q4", "answer": "a4"}\n')
    test_eq(load_rlvr_dataset(bad_jsonl, on_bad='skip')['question'], ['q1', 'q4'])

def test_bad_choices_row_skipped():
    "Moved from the notebook's multiple-choice example."
    mcq = [{'question': 'Which gas do plants absorb?', 'subject': 'high_school_biology', 'choices': ['O2', 'CO2', 'N2', 'He'], 'answer': 1},
           {'question': 'Which hold DNA?', 'subject': 'college_biology', 'choices': ['Nuclei', 'Mitochondria', 'Chloroplasts', 'All of the above'], 'answer': 3}]
    test_eq(load_rlvr_dataset([{**mcq[0], 'choices': 'abcd'}, mcq[0]], on_bad='skip')['reference'], ['CO2'])

def test_option_reference_letter_combination():
    test_eq(option_reference("A, B and D"), ('letter_combination', ['A', 'B', 'D']))
