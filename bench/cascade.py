"""Cascade: how many judge calls does `CascadeVerifier(math_equivalent, judge)` avoid on toy math data, and how
often does it agree with judging everything?

    python bench/cascade.py [--rows 1200] [--seed 0] [--json]

Data: toy-world math questions (`rlvr_nb.toy.make_toy_dataset(domains=['math'])`, references as messy as the
world makes them: bare terms, sentences, rationales, alternate forms), each with responses whose final step
is drawn from a fixed mix: the correct answer in its canonical form (30%), in another surface form or a LaTeX
wrapper (`eighty-four`, `84.0`, `$84$`, `\\boxed{84}`, `7 × 12 = 84`; 25%), the world's misconception (20%),
another wrong number (15%), and hedges or no answer at all (10%: `84 or 74`, `Thought Process:`, empty).

The judge is the toy world's oracle (`ToyOracle()`, noise-free: it plays the teacher judge). "Judging
everything" = the oracle on every row; the cascade = `math_equivalent` first, the oracle on the rest.
Reported for `decide='yes'` (trust only the rule's "equal"; the default) and `decide='both'` (trust "not equal" too).
Target: agreement >= 99.5%.
"""
from __future__ import annotations
import argparse, json, random, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

def responses_for(fact, rng) -> str:
    a = fact.answer
    c = rng.random()
    v = int(a.values[0]) if a.values else None
    lead = rng.choice(('Therefore, the answer is ', 'So the result is ', 'Answer: ', ''))
    if c < 0.30: step = lead + a.canonical
    elif c < 0.55:
        forms = [f for f in a.forms[1:]] + ([f'${v}$', f'\\boxed{{{v}}}', f'{fact.rationale}'] if v is not None else [])
        step = lead + rng.choice(forms)
    elif c < 0.75: step = lead + rng.choice(fact.misconception.forms)
    elif c < 0.90: step = lead + str((v or 10) + rng.choice((-11, -2, -1, 1, 2, 9, 100)))
    else:
        other = fact.misconception.canonical
        step = rng.choice((f'{a.canonical} or {other}', 'Thought Process:', '', f'either {other} or {a.canonical}',
                           'I am not sure.', f'{a.canonical}?? maybe {other}'))
    return f'Let me think about it.\n{fact.thought}\n{step}'.rstrip() if step else ''

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=1200)
    ap.add_argument('--per-question', type=int, default=4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
    from rlvr_nb.reward import CascadeVerifier
    from rlvr_nb.toy import ToyOracle, make_toy_dataset, toy_world
    from rlvr_nb.verify import math_equivalent
    w, rng = toy_world(), random.Random(a.seed)
    ds = make_toy_dataset(a.rows // a.per_question, seed=a.seed, domains=['math'])
    Q, R, A = [], [], []
    for row in ds:
        fact = w.find(row['question'], row['reference'])
        for _ in range(a.per_question):
            Q.append(row['question']); R.append(responses_for(fact, rng)); A.append(row['reference'])
    t = time.perf_counter()
    full = ToyOracle().judge(Q, R, A)
    t_full = time.perf_counter() - t
    truth = [v.label for v in full]
    out = {'rows': len(Q), 'questions': len(ds), 'judge': 'ToyOracle(noise=0)', 'rule': 'math_equivalent',
           'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
           'command': 'python bench/cascade.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
           'yes_share_full': round(sum(l == 'YES' for l in truth) / len(truth), 4)}
    print(f"{len(Q)} responses to {len(ds)} toy math questions; judge = ToyOracle (noise 0); YES share {out['yes_share_full']:.1%}")
    print(f"{'decide':<8} {'calls avoided':>14} {'agreement':>10} {'rule YES wrong':>15} {'rule NO wrong':>14} {'rule s/row':>11}")
    for decide in ('yes', 'both'):
        judge = ToyOracle()
        c = CascadeVerifier(math_equivalent, judge, decide=decide)
        t = time.perf_counter()
        vs = c.judge(Q, R, A)
        dt = time.perf_counter() - t
        agree = sum(v.label == l for v, l in zip(vs, truth)) / len(Q)
        wrong_yes = sum(v.label == 'YES' and l != 'YES' for v, l in zip(vs, truth))
        wrong_no = sum(v.label == 'NO' and l == 'YES' for v, l in zip(vs, truth))
        out[decide] = {'calls_avoided': round(c.saved_share, 4), 'agreement': round(agree, 4), 'false_yes': wrong_yes,
                       'false_no': wrong_no, 'seconds': round(dt, 2)}
        print(f"{decide:<8} {c.saved_share:>14.1%} {agree:>10.2%} {wrong_yes:>15} {wrong_no:>14} {dt / len(Q):>11.4f}")
        if agree < 1.0:
            bad = [(R[i].splitlines()[-1] if R[i] else '', A[i], vs[i].label, truth[i]) for i in range(len(Q)) if vs[i].label != truth[i]]
            for b in bad[:5]: print('   disagreement:', b)
    out['calls_avoided'], out['agreement'] = out['yes']['calls_avoided'], out['yes']['agreement']
    print(f"default (decide='yes'): {out['calls_avoided']:.1%} of judge calls avoided, agreement {out['agreement']:.2%} (target >= 99.5%)")
    if a.json: print(json.dumps(out))
    return out

if __name__ == '__main__':
    main()
