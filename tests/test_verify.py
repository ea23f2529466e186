"Property and behaviour tests of the rule verifiers (rlvr_nb.verify)."
import math, threading, time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rlvr_nb.data import DataError, final_step
from rlvr_nb.verify import (ITEM_DEADLINE, KNOWN_UNITS, RULE_KINDS, RuleVerifier, Verdict, answer_candidates, contains_reference,
                            jaccard_reward, math_equivalent, math_equivalent_many)

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
    ("The answer is 7, since x = 5", "5", None),    # a second value after the answer: cannot tell
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
                                                ["0.5", "5", "5", "3"], timeout=1, margin=1, item_deadline=2)
    t0 = time.time()
    th = threading.Thread(target=work); th.start(); th.join(60)
    assert not th.is_alive()
    assert out['r'][0] is True and out['r'][3] is True
    assert out['r'][2] is None and out['r'][1] in (False, None)
    assert time.time() - t0 < 20   # worker start (~2-5 s on a loaded machine) + at most item_deadline + margin = 3 s per item

def test_isolate_in_main_thread():
    t0 = time.time()
    assert math_equivalent_many(["The answer is 0.5", "9^{9^{9^{9^9}}}"], ["1/2", "5"], timeout=1, margin=1, isolate=True,
                                item_deadline=2) == [True, None]
    assert time.time() - t0 < 20
    assert RuleVerifier('math', isolate=True).rewards(['q'], ['The answer is 1/4'], ['0.25']) == [1.0]

def test_main_thread_and_thread_agree():
    resps = ["The answer is 0.5", "The answer is 5 or 6", "x = 3", "The answer is \\frac{2}{4}"]
    refs = ["\\frac{1}{2}", "5", "3", "0.5"]
    main = math_equivalent_many(resps, refs)
    box = {}
    th = threading.Thread(target=lambda: box.setdefault('r', math_equivalent_many(resps, refs))); th.start(); th.join(60)
    assert box['r'] == main == [True, None, True, True]

# --- the full-parse rule: nothing but a known unit after the value ----------------------------------

ATTACKS = ['5 is wrong', '5 is not correct', '5 squared', '5 factorial', '5 thousand', '5 apples', 'The answer is 5; 6',
           'The answer is 5. Just kidding, it is 6', '$5$ if n is odd', '5 \\text{squared}',
           # neighbours of the above
           '$5$ plus $5$', '$5$ is not $5$', '$5$ apples', '\\boxed{5} squared', '5 \\text{k}', '5 \\mathrm{M}', '5 cm percent',
           'It is 5 for odd n and the answer is 6', 'For odd n the answer is 5 and for even n the answer is 6',
           'The answer is 5, just kidding', "The answer is 5, isn't it", 'The answer is 5, since x = 6']

@pytest.mark.parametrize('resp', ATTACKS)
def test_hedged_or_contradicted_answers_are_not_accepted(resp):
    ref = '6' if resp.endswith('6') and 'odd n and' in resp else '5'
    assert math_equivalent(resp, ref) is None
    assert answer_candidates(resp) is None

def test_a_hedged_answer_goes_to_the_judge_in_a_cascade():
    from rlvr_nb.reward import CascadeVerifier
    class Judge(RuleVerifier):
        def __init__(self): super().__init__('contains'); self.calls = 0
        def judge(self, q, r, a): self.calls += len(q); return [Verdict('NO', 0.0, 1.0)] * len(q)
    j = Judge()
    vs = CascadeVerifier(math_equivalent, j).judge(['q'] * 3, ['5 is wrong', 'The answer is 5. Just kidding, it is 6', 'The answer is 5'], ['5'] * 3)
    assert [v.label for v in vs] == ['NO', 'NO', 'YES'] and j.calls == 2

_MEASURES = [u for k, g in KNOWN_UNITS.items() if k not in ('symbols', 'percent', 'count words') for u in g]

def test_known_units():
    for u in _MEASURES:
        assert answer_candidates(f'5 {u}') == ['5'], u
        assert answer_candidates(f'5 \\text{{ {u}}}') == ['5'], u
        assert answer_candidates(f'5 \\mbox{{ {u}}}^2') == ['5'], u
    for u in KNOWN_UNITS['symbols']:
        assert answer_candidates(f'5 \\text{{ {u}}}') == ['5'] and answer_candidates(f'5 \\mathrm{{{u}}}') == ['5'], u
        assert answer_candidates(f'5 {u}') == [f'5 {u}'], u          # a bare letter is a variable
    for u in KNOWN_UNITS['count words']: assert answer_candidates(f'There are 5 {u}.') == ['5'], u
    for form in ('5%', '5\\%', '5 percent', '5 m/s', '5 km/h', '5 m/s^2', '5 square feet', '5 miles per hour', '5\\,\\text{kg}',
                 '5 \\text{ m}/\\text{s}', '$5$ dollars', '5 degrees Celsius'):
        assert answer_candidates(form) == ['5'], form
    for w in ('apples', 'people', 'thousand', 'squared', 'wrong', 'times', 'or', 'of'): assert w not in {u.lower() for g in KNOWN_UNITS.values() for u in g}

def _value(x):
    kind, n, d = x
    if kind == 'int': return str(n), str(n)
    if kind == 'dec': return f'{n / 4:g}', f'{n / 4:g}'
    return f'\\frac{{{n}}}{{{d}}}', f'{n}/{d}'

values = st.tuples(st.sampled_from(['int', 'dec', 'frac']), st.integers(0, 10**5), st.integers(1, 99))
units = st.one_of(st.sampled_from(['', ' cm', ' \\text{ cm}^2', '\\mbox{ inches}^2', ' dollars', ' m/s', '%', ' square feet', ' degrees',
                                   '\\,\\mathrm{kg}', ' \\text{ m}']), st.sampled_from(_MEASURES).map(lambda u: ' ' + u))
wrappers = st.sampled_from(['{v}{u}', '${v}${u}', '${v}{u}$', '\\boxed{{{v}}}{u}', 'The answer is {v}{u}', 'Therefore, the answer is ${v}${u}',
                            'The result is {v}{u}', 'So the answer is $\\boxed{{{v}}}${u}'])

def _accepted(x, u, w):
    v, ref = _value(x)
    a = w.format(v=v, u=u)
    assert math_equivalent(a, ref) is True, (a, ref)       # the rule accepts these: the properties below start from an accepted answer
    return a, ref

AFTER_WORDS = ['wrong', 'is wrong', 'incorrect', 'is not correct', 'not', 'not really', 'squared', 'cubed', 'factorial', 'hundred',
               'thousand', 'million', 'billion', 'k', 'M', 'percent of it', 'of the total', 'times', 'times 2', 'plus', 'plus 1', 'minus',
               'minus 1', 'divided by 2', 'over 3', 'maybe', 'or', 'or 7', 'or so', 'approximately', 'roughly', 'at most', 'or more',
               'just kidding', 'if n is odd', 'unless n = 2', '?', 'no', 'nope', 'false', 'apples', 'people', 'each', '\\text{ squared}',
               '\\text{k}', '\\text{ or } 7', '(wrong)', '(approximately)']

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, units, wrappers, st.sampled_from(AFTER_WORDS))
def test_no_word_after_an_accepted_answer_is_accepted(x, u, w, word):
    a, ref = _accepted(x, u, w)
    assert math_equivalent(a + ' ' + word, ref) is not True, a + ' ' + word

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, units, wrappers, st.integers(0, 10**5),
       st.sampled_from(['{a}; {b}', '{a}. {b}', '{a}, {b}', '{a}. Just kidding, it is {b}', '{a}, just kidding it is {b}',
                        '{a}; no wait, {b}', '{a}. Actually {b}', '{a}. It is {b}', '{a}, since x = {b}', '{a}, after {b} steps',
                        '{a}. The answer is {b}', '{a}; the answer is ${b}$']))
def test_no_second_value_after_an_accepted_answer_is_accepted(x, u, w, b, form):
    a, ref = _accepted(x, u, w)
    if float(b) == float(eval(ref)): b += 1                  # a different number
    resp = form.format(a=a, b=b)
    assert math_equivalent(resp, ref) is not True, resp

# --- time per item -------------------------------------------------------------------------------------

def _slow(k, n=20):
    "n different candidates, each equal to 5 and nested 10 deep (math-verify: ~0.4 s each): passes every structural check."
    return ', i.e. '.join('$' + '(' * 10 + f'{5 * j}/{j}' + ')' * 10 + '$' for j in range(k, k + n))

def test_absurd_nesting_is_refused_at_once():
    repro = ' '.join('$' + '(' * 40 + str(k) + ')' * 40 + '$' for k in range(10, 21))
    t0 = time.time()
    assert math_equivalent(repro, '1') is None
    assert math_equivalent_many([repro] * 5, ['1'] * 5) == [None] * 5
    assert time.time() - t0 < ITEM_DEADLINE + 2

def test_item_deadline_bounds_the_whole_item():
    assert len(answer_candidates(_slow(1))) == 20
    t0 = time.time()
    assert math_equivalent(_slow(1), '5', item_deadline=1) is None
    assert time.time() - t0 < 1 + 1 + 2                       # item_deadline, < 1 s rounding of math-verify's whole-second alarms, slack
    batch = [_slow(k) for k in (100, 200, 300)] + ['The answer is 5']
    t0 = time.time()
    assert math_equivalent_many(batch, ['5'] * 4, item_deadline=1) == [None, None, None, True]
    assert time.time() - t0 < 4 * (1 + 1) + 2

def test_item_deadline_in_the_worker():
    batch = [_slow(k) for k in (400, 500)] + ['The answer is 5']
    math_equivalent_many(['1'], ['1'], isolate=True)             # the worker's start is not an item's time
    t0 = time.time()
    assert math_equivalent_many(batch, ['5'] * 3, item_deadline=1, margin=1, isolate=True) == [None, None, True]
    assert time.time() - t0 < 3 * (1 + 1) + 2

@pytest.mark.parametrize('bad', [0, -1, float('nan'), float('inf')])
def test_item_deadline_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match='item_deadline'): math_equivalent('5', '5', item_deadline=bad)

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
    with pytest.raises(ValueError, match='rule must be'): RuleVerifier('regex')
    with pytest.raises(DataError, match=r"'reference': rows \[1\]"): RuleVerifier().judge(['q', 'q'], ['a', 'b'], ['r', '  '])
    with pytest.raises(DataError, match=r"'question': rows \[0\]"): RuleVerifier('math').judge([None], ['a'], ['r'])
    with pytest.raises(DataError, match='differ in length'): RuleVerifier().judge(['q'], ['a', 'b'], ['r'])
    with pytest.raises(ValueError, match='kind must be one of'): RuleVerifier().rewards(['q'], ['a'], ['r'], kind='hard')


# ------------------------------------------------------------------------------------------ batch deadline
def _slow(k):
    "An answer built to be slow: twenty equal candidates nested 10 deep (~0.4 s each for math-verify)."
    return ', i.e. '.join('$' + '(' * 10 + f'{5 * j}/{j}' + ')' * 10 + '$' for j in range(k, k + 20))

def test_judge_deadline_nesting_and_validation():
    from rlvr_nb.verify import current_deadline, judge_deadline
    assert current_deadline() is None
    with judge_deadline(None) as free: assert free.left() == float('inf') and not free.expired
    with judge_deadline(5) as outer:
        with judge_deadline(60) as inner: assert inner.left() <= outer.left() + 1e-6   # the sooner end wins
        with judge_deadline(0) as now: assert now.expired; now.skip(2)
        assert current_deadline() is outer and outer.unjudged == 2
    for bad in (-1, float('nan'), float('inf'), '3', True):
        with pytest.raises(ValueError):
            with judge_deadline(bad): pass

@pytest.mark.parametrize('isolate', [False, True])
def test_math_rule_batch_stops_at_the_deadline(isolate):
    from rlvr_nb.verify import judge_deadline, math_equivalent_many
    math_equivalent_many(['The answer is 1'], ['1'], isolate=isolate)             # the worker is up before the clock starts
    batch = [_slow(k) for k in (1, 30, 60, 90, 120, 150)] + ['The answer is 5']
    with judge_deadline(2.0) as d:
        t0 = time.monotonic(); out = math_equivalent_many(batch, ['5'] * len(batch), isolate=isolate); dt = time.monotonic() - t0
    assert out[-1] is None and d.unjudged >= 3 and True not in out
    assert dt < 2.0 + (1.0 if not isolate else 2.0) + 1.0, dt                         # the bound, plus scheduling slack
    assert math_equivalent_many(['The answer is 5'], ['5'], isolate=isolate) == [True]   # no deadline: judged as usual

def test_rule_verifier_old_keyword_still_works():
    with pytest.warns(FutureWarning, match='rule='): v = RuleVerifier(kind='jaccard')
    assert v.rule == v.kind == 'jaccard' and v.rewards(['q'], ['sodium chloride'], ['sodium chloride'], kind='soft') == [1.0]
