"""Checks moved from the 02_verify notebook: the full battery of `answer_candidates` cases (the notebook keeps a few),
sanitised and refused verdicts, `check_triples`' other refusals, empty final steps of the string rules, alternate forms in
a reference, the `math_equivalent` battery, `RuleVerifier` with callables, empty responses and refusals, a NO verdict,
the isolated worker, `judge_deadline` over slow items, and the Jaccard rule."""
import time

import fastcore.test as ft

from rlvr_nb.data import final_step
from rlvr_nb.verify import (RuleVerifier, Verdict, answer_candidates, check_triples, contains_reference, jaccard_reward,
                            judge_deadline, math_equivalent, math_equivalent_many)


def test_answer_candidates_battery():
    ft.test_eq(answer_candidates("Therefore, the answer is $\\frac{1}{4}$."), ['\\frac{1}{4}'])
    ft.test_eq(answer_candidates("The final answer is $\\boxed{12}$. I hope it is correct."), ['12'])
    ft.test_eq(answer_candidates("**Answer:** 76°"), ['76^\\circ'])
    ft.test_eq(answer_candidates("15 \\text{ cm}^2"), ['15'])
    ft.test_eq(answer_candidates("The speed is 60 miles per hour."), ['60'])
    ft.test_eq(answer_candidates("9.8 m/s^2"), ['9.8'])
    ft.test_eq(answer_candidates("5 m"), ['5 m'])                               # a bare letter is a variable: 5·m, not 5 metres
    ft.test_eq(answer_candidates("$5$ or $7$"), ['5', '7'])
    ft.test_eq(answer_candidates("4210_{5}"), [str(int('4210', 5))])
    ft.test_eq(answer_candidates("x_1 + x_2"), ['x_1 + x_2'])
    ft.test_eq(answer_candidates("129_8"), None)                                 # 9 is not a base-8 digit
    ft.test_eq(answer_candidates("Using the 3 cases above, the answer is $12$."), ['12'])
    ft.test_eq(answer_candidates("There are 12 ways in total."), ['12'])
    ft.test_eq(answer_candidates("The area is 15 \\text{ cm}^2."), ['15'])
    ft.test_eq(answer_candidates("(0,9) \\cup (9,36)", strict=True), ['(0,9) \\cup (9,36)'])   # one set, not '(0,9) \cup' and an alternate form
    ft.test_eq(answer_candidates("World War I"), None)
    ft.test_eq(answer_candidates("The USA Patriot Act of 2001"), None)
    ft.test_eq(answer_candidates("2 times as many items can be uniquely identified.", strict=True), None)
    ft.test_eq(answer_candidates("There are 12 ways in total.", strict=True), None)
    ft.test_eq(answer_candidates("such a policy would wrongly disrespect existing citizens"), None)
    ft.test_eq(answer_candidates("3,000,000; 75%"), None)
    for hedge in ["The answer is 5 or 7", "I think 12, maybe 15", "3 apples and 4 pears", "The answer is 5, or possibly 7",
                  "If n is even the answer is 7", "The answer is 7 if n is even and 9 otherwise", "The answer is 5 (or 7)",
                  "The answer is 5. Wait, no: it is 7.", "There are 12 or 13 ways", "x equals 5 and y equals 7",
                  "\\boxed{5", "5 \\text{ or } 7", "", None, "x" * 2000,
                  # words after the value that the rule does not know: hedges, negations, operations, magnitudes, other nouns
                  "5 is wrong", "5 is not correct", "5 squared", "5 factorial", "5 thousand", "5 apples", "5 \\text{squared}", "5 \\text{k}",
                  "$5$ if n is odd", "$5$ plus $5$", "$5$ is not $5$", "$5$ apples",
                  # a second value after the first
                  "The answer is 5; 6", "The answer is 5. Just kidding, it is 6", "The answer is 7, since x = 5",
                  "The answer is $(2, 12)$, after 3 steps", "It is 5 for odd n and the answer is 6",
                  # absurd nesting: refused before math-verify sees it
                  "$" + "(" * 40 + "5" + ")" * 40 + "$"]:
        ft.test_eq(answer_candidates(hedge), None)


def test_verdict_sanitised_and_refused():
    v = Verdict(None, p_yes=float('nan'), p_no=2.0)
    ft.test_eq((v.binary, v.soft, v.parse_failure, v.p_yes, v.p_no), (0.0, 0.0, True, 0.0, 1.0))
    ft.test_fail(lambda: Verdict('Yes'), contains="label must be")
    ft.test_fail(lambda: Verdict('YES', error='x'), contains='no label')

def test_check_triples_lengths_and_references():
    ft.test_fail(lambda: check_triples(['q'], ['a', 'b'], ['r']), contains="differ in length")
    ft.test_fail(lambda: check_triples(['q'], ['a'], [None]), contains="'reference': rows [0]")

def test_string_rules_without_a_final_step():
    ft.test_eq(contains_reference("", "7"), 0.0)
    ft.test_eq(jaccard_reward("  \n ", "x"), 0.0)

def test_alternate_form_in_a_reference():
    # an alternate form in parentheses is a second statement of the same value, not a product
    ft.test_eq(answer_candidates('42 (42.0)', strict=True), ['42', '42.0'])
    ft.test_eq(math_equivalent('Therefore, the answer is 42', '42 (42.0)'), True)
    ft.test_eq(math_equivalent('Therefore, the answer is 42', '42 (43)'), None)   # a reference that contradicts itself: cannot tell

def test_math_equivalent_battery():
    ft.test_eq(math_equivalent("The answer is \\boxed{2\\sqrt{3}+1}", "1+2\\sqrt{3}"), True)
    ft.test_eq(math_equivalent("The answer is 15 \\text{ cm}^2.", "15\\mbox{ cm}^2"), True)
    ft.test_eq(math_equivalent("The answer is 864 square inches", "864 \\mbox{ inches}^2"), True)
    ft.test_eq(math_equivalent("The answer is $5$ or $7$", "5"), None)
    ft.test_eq(math_equivalent("The answer is 5 is wrong", "5"), None)
    ft.test_eq(math_equivalent("The answer is 5. Just kidding, it is 6", "5"), None)
    ft.test_eq(math_equivalent("The answer is 5", "five, since the rest is even"), None)  # the reference is not one expression either
    ft.test_eq(math_equivalent("", "5"), None)
    ft.test_eq(math_equivalent(None, "5"), None)

def test_rule_verifier_callables_empty_responses_and_refusals():
    ft.test_close(RuleVerifier(lambda r, x: len(final_step(r)) / 100).rewards(['q'], ['abc'], ['x'], kind='soft'), [0.03])
    ft.test_eq(RuleVerifier(lambda r, x: 1 / 0).judge(['q'], ['abc'], ['x'])[0].parse_failure, True)
    ft.test_eq(RuleVerifier('math').rewards(['q'], ['  \n '], ['5']), [0.0])
    ft.test_fail(lambda: RuleVerifier('regex'), contains="rule must be")
    ft.test_fail(lambda: RuleVerifier().judge(['q'], ['a'], ['']), contains="'reference': rows [0]")

def test_a_no_verdict():
    v = Verdict('NO', p_yes=0.3, p_no=0.6)
    ft.test_eq((v.binary, round(v.soft, 6), round(v.soft_normalized, 6)), (0.0, 0.4, round(1/3, 6)))

def test_math_equivalent_more_forms_and_a_hedge():
    ft.test_eq(math_equivalent("The answer is 1/4", "\\frac{1}{4}"), True)
    ft.test_eq(math_equivalent("The answer is $5$, since $x = 7$", "5"), None)
    ft.test_eq(math_equivalent("The answer is $\\frac14$, i.e. $0.25$", "1/4"), True)

def test_isolated_main_thread_call():
    ft.test_eq(math_equivalent_many(["The answer is 1/2", "The answer is 3 or 4"], ["0.5", "3"], isolate=True), [True, None])

def test_judge_deadline_over_a_batch_of_slow_items():
    slow = lambda k: ', i.e. '.join('$' + '(' * 10 + f'{5 * j}/{j}' + ')' * 10 + '$' for j in range(k, k + 20))
    with judge_deadline(1.5) as d:                    # a batch of slow items: the time is up after the first one or two
        t0 = time.time(); res = math_equivalent_many([slow(1), slow(100), slow(200), 'The answer is 5'], ['5'] * 4)
    ft.test_eq(res[3], None); assert d.unjudged >= 2 and time.time() - t0 < 1.5 + 1.5

def test_jaccard_rule_soft_and_binary():
    qs, refs = ['q'] * 4, ['sodium chloride', 'sodium chloride', '1/4', '1/4']
    resps = ['Therefore, the answer is sodium chloride', 'It is table salt (NaCl)', 'The answer is $0.25$', 'The answer is 1/4 or 1/2']
    ft.test_close(RuleVerifier('jaccard').rewards(qs, resps, refs, kind='soft'), [jaccard_reward(r, x) for r, x in zip(resps, refs)])
    ft.test_eq(RuleVerifier('jaccard').rewards(qs, resps, refs, kind='binary'), [0.0, 0.0, 0.0, 0.0])

def test_judge_deadline_must_be_finite():
    ft.test_fail(lambda: judge_deadline(float('nan')).__enter__(), contains='finite')
