"""Checks moved from the 02_verify notebook: the full battery of `answer_candidates` cases (the notebook keeps a few)."""
import fastcore.test as ft

from rlvr_nb.verify import answer_candidates


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
