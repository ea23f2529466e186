"Property and behaviour tests of the rule verifiers (rlvr_nb.verify)."
import math, threading, time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rlvr_nb.data import DataError, final_step
from rlvr_nb.verify import (RULE_KINDS, RuleVerifier, Verdict, answer_candidates, contains_reference, jaccard_reward,
                            math_equivalent, math_equivalent_many)

anything = st.one_of(st.text(), st.none(), st.integers(), st.floats(allow_nan=True), st.binary(), st.lists(st.text(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
blank = st.text(alphabet=' \t\r\n\u00a0\u2028\u3000\x0b\x0c', max_size=20)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

def _ok(r):
    assert isinstance(r, float) and math.isfinite(r) and 0.0 <= r <= 1.0, r

# --- contains / jaccard -------------------------------------------------------------------------------

@fast
@given(anything, anything)
def test_string_rules_are_finite_floats_in_unit_interval(resp, ref):
    _ok(contains_reference(resp, ref)); _ok(jaccard_reward(resp, ref))

@fast
@given(st.text(), st.text(min_size=1))
def test_unicode(resp, ref):
    _ok(contains_reference(resp, ref)); _ok(jaccard_reward(resp, ref))

@fast
@given(blank, st.text(min_size=1))
def test_no_final_step_scores_zero(resp, ref):
    assert final_step(resp) == ''
    assert contains_reference(resp, ref) == 0.0 and jaccard_reward(resp, ref) == 0.0
    assert math_equivalent(resp, ref) is None
    for kind in RULE_KINDS:
        assert RuleVerifier(kind).rewards(['q'], [resp], [ref if ref.strip() else 'x'], kind='binary') == [0.0]
        assert RuleVerifier(kind).rewards(['q'], [resp], [ref if ref.strip() else 'x'], kind='soft') == [0.0]

@fast
@given(st.text(min_size=1).filter(lambda s: s.strip() and '\n' not in s and '\r' not in s and final_step(s) == s.strip()))
def test_reference_in_its_own_final_step(ref):
    assert contains_reference("reasoning\nTherefore, the answer is " + ref, ref) == 1.0

def test_megabyte_strings():
    big = 'x' * 1_000_000 + '\n' + 'y ' * 500_000
    t0 = time.time()
    _ok(contains_reference(big, 'y')); _ok(jaccard_reward(big, 'y y'))
    assert math_equivalent(big, '5') is None
    assert RuleVerifier('math').rewards(['q'], [big], ['5']) == [0.0]
    assert time.time() - t0 < 10

def test_only_final_step_counts():
    assert contains_reference("The answer is 7 kg\nI hope this helps", "7 kg") == 0.0
    assert jaccard_reward("sodium chloride\nno idea", "sodium chloride") == 0.0

# --- math_equivalent ----------------------------------------------------------------------------------

@pytest.mark.parametrize('resp,ref,want', [
    ("Therefore, the answer is $\\frac{1}{4}$.", "0.25", True),
    ("The answer is 1/4", "\\frac{1}{4}", True),
    ("So there are 12 ways in total.", "12", True),
    ("The answer is $\\boxed{2\\sqrt{3}+1}$", "1+2\\sqrt{3}", True),
    ("Final Answer: The final answer is $12$. I hope it is correct.", "12", True),
    ("The answer is 76°", "76^\\circ", True),
    ("The answer is 1,000", "1000", True),
    ("The answer is 4211_5", "4210_5", False),
    ("The answer is 7", "5", False),
    ("The answer is .0000674", ".0000672", False),
    # partial parses: math-verify alone accepts several of these
    ("The answer is 5 or 7", "5", None),
    ("Either 7 or 5", "5", None),
    ("The answer is between 5 and 7", "5", None),
    ("The answer is 5. Wait, no: it is 7.", "5", None),
    ("The answer is $5$ or $7$", "5", None),
    ("It is 5, or possibly 7", "5", None),
    ("The answer is 7, since x = 5", "5", False),
    ("The answer is 5", "The USA Patriot Act of 2001", None),
    ("", "5", None), (None, "5", None), ("The answer is 5", None, None), ("The answer is 5", "", None),
])
def test_math_equivalent(resp, ref, want):
    assert math_equivalent(resp, ref) is want

@fast
@given(anything, anything)
def test_math_equivalent_never_crashes(resp, ref):
    assert math_equivalent(resp, ref, timeout=1) in (True, False, None)

@settings(max_examples=25, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_math_equivalent_on_integers(a, b):
    assert math_equivalent(f"Therefore, the answer is {a}", str(b)) is (a == b)

def test_answer_candidates_rules():
    assert answer_candidates("Using the 3 cases above, the answer is $12$.") == ['12']
    assert answer_candidates("$\\boxed{5}$") == ['5']
    assert answer_candidates("\\boxed{5") is None
    assert answer_candidates("3 apples and 4 pears") is None
    assert answer_candidates("There are 12 ways", strict=True) is None
    assert answer_candidates("x" * 5000) is None

def test_math_equivalent_from_a_thread_kills_a_power_tower():
    "Off the main thread the check runs in a killable worker: an adversarial power tower ends within seconds."
    out = {}
    def work(): out['r'] = math_equivalent_many(["The answer is 1/2", "9^9^9^9^9", "9^{9^{9^{9^9}}}", "The answer is 3"],
                                                ["0.5", "5", "5", "3"], timeout=1, margin=1)
    t0 = time.time()
    th = threading.Thread(target=work); th.start(); th.join(60)
    assert not th.is_alive()
    assert out['r'][0] is True and out['r'][3] is True
    assert out['r'][2] is None and out['r'][1] in (False, None)
    assert time.time() - t0 < 20   # worker start (~2-5 s on a loaded machine) + at most 2 s per item

def test_isolate_in_main_thread():
    t0 = time.time()
    assert math_equivalent_many(["The answer is 0.5", "9^{9^{9^{9^9}}}"], ["1/2", "5"], timeout=1, margin=1, isolate=True) == [True, None]
    assert time.time() - t0 < 20
    assert RuleVerifier('math', isolate=True).rewards(['q'], ['The answer is 1/4'], ['0.25']) == [1.0]

def test_main_thread_and_thread_agree():
    resps = ["The answer is 0.5", "The answer is 5 or 6", "x = 3", "The answer is \\frac{2}{4}"]
    refs = ["\\frac{1}{2}", "5", "3", "0.5"]
    main = math_equivalent_many(resps, refs)
    box = {}
    th = threading.Thread(target=lambda: box.setdefault('r', math_equivalent_many(resps, refs))); th.start(); th.join(60)
    assert box['r'] == main == [True, None, True, True]

# --- RuleVerifier -------------------------------------------------------------------------------------

@fast
@given(st.lists(anything, min_size=1, max_size=4), st.sampled_from(['contains', 'jaccard']), st.sampled_from(['binary', 'soft', 'soft_normalized']))
def test_rule_verifier_rewards(resps, kind, rk):
    n = len(resps)
    out = RuleVerifier(kind).rewards(['q'] * n, resps, ['sodium chloride'] * n, kind=rk)
    assert len(out) == n
    for r in out: _ok(r)

@settings(max_examples=15, deadline=None)
@given(st.lists(anything, min_size=1, max_size=3), st.sampled_from(['binary', 'soft', 'soft_normalized']))
def test_rule_verifier_math_rewards(resps, rk):
    n = len(resps)
    for r in RuleVerifier('math').rewards(['q'] * n, resps, ['5'] * n, kind=rk): _ok(r)

def test_rule_verifier_semantics():
    qs, refs = ['q'] * 3, ['sodium chloride', '1/4', '1/4']
    resps = ['Therefore, the answer is sodium chloride', 'The answer is $0.25$', 'The answer is 1/4 or 1/2']
    assert [v.label for v in RuleVerifier('contains').judge(qs, resps, refs)] == ['YES', 'NO', 'YES']
    v = RuleVerifier('math').judge(qs, resps, refs)
    assert [x.label for x in v] == [None, 'YES', None] and sum(x.parse_failure for x in v) == 2
    j = RuleVerifier('jaccard', threshold=0.5).judge(['q'], ['The answer is sodium chloride'], ['sodium chloride'])[0]
    assert j.label == 'NO' and j.soft == pytest.approx(2 / 5) and j.soft_normalized == pytest.approx(2 / 5)

@pytest.mark.parametrize('value,label,soft', [(True, 'YES', 1.0), (False, 'NO', 0.0), (None, None, 0.0),
                                              (0.7, 'YES', 0.7), (float('nan'), 'NO', 0.0), (5.0, 'YES', 1.0), (-1, 'NO', 0.0)])
def test_rule_verifier_callable(value, label, soft):
    v = RuleVerifier(lambda r, x: value).judge(['q'], ['a'], ['b'])[0]
    assert v.label == label and v.reward('soft') == pytest.approx(soft)

def test_rule_verifier_callable_that_raises_is_a_parse_failure():
    def boom(r, x): raise RuntimeError('no')
    v = RuleVerifier(boom).judge(['q'], ['a'], ['b'])[0]
    assert v.parse_failure and v.binary == 0.0

def test_rule_verifier_bad_input():
    with pytest.raises(ValueError, match='kind must be'): RuleVerifier('regex')
    with pytest.raises(DataError, match=r"'reference': rows \[1\]"): RuleVerifier().judge(['q', 'q'], ['a', 'b'], ['r', '  '])
    with pytest.raises(DataError, match=r"'question': rows \[0\]"): RuleVerifier('math').judge([None], ['a'], ['r'])
    with pytest.raises(DataError, match='differ in length'): RuleVerifier().judge(['q'], ['a', 'b'], ['r'])
    with pytest.raises(ValueError, match='kind must be one of'): RuleVerifier().rewards(['q'], ['a'], ['r'], kind='hard')
