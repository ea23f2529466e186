"""The toy world's data-scaling and out-of-distribution experiments (paper Tables 2 and 3) around `rlvr sweep`.

    python bench/scaling.py policy --seed 0                    # print the folder of the hedging toy base policy (built once, cached)
    python bench/scaling.py shapes SWEEP_DIR [SWEEP_DIR ...]   # what the policies of each grid point write: hedges, rule pays, grader accepts
    python bench/scaling.py ood SWEEP_DIR [SWEEP_DIR ...]      # accuracy of each point's policies on held-out domains and restyled questions

`policy`: the toy base policy of `rlvr_nb.toy.pretrain_toy_policy`, pretrained with the same settings and steps except
that a share `--p_hedge` of its pretraining answers list two answers of the question's domain ("Therefore, the answer is
56 or 65."), as real base models sometimes hedge; a model folder for `models.policy`. The default toy policy never
writes such a line, so RL has nothing of the kind to amplify.

`shapes`: for every grid point of the sweeps and every evaluated policy, from the evaluate stage's graded answers: the
share of final steps that name two or more distinct answers of the question's domain (read with the toy oracle's own
answer reader), how often the substring rule pays them and how often the grader accepts them, and the share of answers
the rule pays but the grader rejects. `ood`: the held-out sets of `toy_ood_sets` (the domains a run did not train on,
with their questions as they are and in an LLM's and a web forum's phrasing), answered greedily by the run's initial and
trained policies and graded by the noise-free oracle. Both print a table and a final JSON line (`SCALING_SHAPES`,
`SCALING_OOD`); `--json FILE` also writes the JSON.
"""
from __future__ import annotations
import argparse, hashlib, inspect, json, math, random, sys, time
from pathlib import Path
from typing import Any, Mapping, Sequence

# run as a script, this folder is first on sys.path: keep its other scripts from shadowing installed packages
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != Path(__file__).resolve().parent]

# ---- a base policy that sometimes hedges ----------------------------------------------------------------------------

def toy_hedge(fact, first: str, second: str) -> str:
    "A response in the toy policy's format whose answer line lists two answers: `first or second`."
    from rlvr_nb.toy import toy_response
    return toy_response(fact, f'{first} or {second}')

def _hedging_target(fact, rng: random.Random, s: dict) -> str:
    "One pretraining response: with probability `p_hedge` the answer the policy would have given and another one of the domain, else as the toy policy."
    from rlvr_nb.toy import toy_world
    from rlvr_nb.toy.models import _sft_target
    if rng.random() >= s['p_hedge']: return _sft_target(fact, rng, s['p_correct'], s['p_misconception'], s['p_echo'])
    pool = toy_world().pools[fact.domain]
    u = rng.random()
    a = fact.answer if u < s['p_correct'] else fact.misconception if u < s['p_correct'] + s['p_misconception'] else rng.choice([x for x in pool if x != fact.answer])
    b = rng.choice([x for x in pool if x != a])
    pair = [rng.choice(a.forms), rng.choice(b.forms)]; rng.shuffle(pair)
    return toy_hedge(fact, *pair)

def _train_hedging_policy(out: Path, seed: int, s: dict) -> None:
    "`rlvr_nb.toy.models._train_policy` with `_hedging_target` as the pretraining responses."
    import torch
    from rlvr_nb.data import policy_messages
    from rlvr_nb.toy import toy_model, toy_tokenizer, toy_world
    from rlvr_nb.toy.models import _batch_loss, _common_prefix
    from rlvr_nb.toy.world import _h
    tok = toy_tokenizer()
    model = toy_model(tok, hidden_size=s['hidden_size'], num_layers=s['num_layers'], num_heads=s['num_heads'], seed=seed)
    items = toy_world().split_items('train')
    prompts = tok([tok.apply_chat_template(policy_messages(it.question), tokenize=False, add_generation_prompt=True) for it in items],
                  add_special_tokens=False)['input_ids']
    P = _common_prefix(prompts) - 1
    eos, pad = tok.convert_tokens_to_ids('<|im_end|>'), tok.pad_token_id
    rng, steps = random.Random(_h('pretrain-hedging', seed)), s['steps']
    opt = torch.optim.AdamW(model.parameters(), lr=s['lr'], weight_decay=0.0, betas=(0.9, 0.98))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, k / steps)))))
    model.train(); losses, t0 = [], time.process_time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            idx = [rng.randrange(len(items)) for _ in range(s['batch_size'])]
            resp = tok([_hedging_target(items[i].fact, rng, s) for i in idx], add_special_tokens=False)['input_ids']
            loss = _batch_loss(model, prompts[0][:P], [prompts[i] for i in idx], [r + [eos] for r in resp], pad)
            loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.eval(); model.save_pretrained(str(out)); tok.save_pretrained(str(out))
    (out / 'pretrain_info.json').write_text(json.dumps({'cpu_seconds': time.process_time() - t0, 'settings': s, 'seed': seed, 'losses': losses}))

def hedging_toy_policy(*, seed: int = 0, p_hedge: float = 0.1, cache: bool = True, **settings) -> Path:
    "The folder of the hedging toy base policy (see the module docstring), cached under `rlvr_nb.io.cache_dir()`."
    import torch, transformers
    from rlvr_nb.io import cached_artifact
    from rlvr_nb.toy import TOY_PRETRAIN_DEFAULTS, toy_code_hash
    bad = set(settings) - set(TOY_PRETRAIN_DEFAULTS)
    if bad: raise TypeError(f"unknown pretraining settings {sorted(bad)}; known: {sorted(TOY_PRETRAIN_DEFAULTS)}")
    if not (isinstance(p_hedge, (int, float)) and 0 <= p_hedge < 1): raise ValueError(f"p_hedge must be in [0, 1), not {p_hedge!r}")
    s = {**TOY_PRETRAIN_DEFAULTS, **settings, 'p_hedge': float(p_hedge)}
    src = ''.join(inspect.getsource(f) for f in (toy_hedge, _hedging_target, _train_hedging_policy))   # this recipe's own code
    key = {'what': 'toy-hedging-policy', **s, 'seed': seed, 'code': toy_code_hash(), 'recipe': hashlib.sha256(src.encode()).hexdigest()[:16],
           'torch': torch.__version__, 'transformers': transformers.__version__}
    return cached_artifact('toy-hedging-policy', key, lambda p: _train_hedging_policy(p, seed, s), cache=cache)

# ---- what the policies write -----------------------------------------------------------------------------------------

def answer_shapes(df) -> 'pd.DataFrame':
    """Per graded answer (`question`, `reference`, `response`, `correct`): how many distinct candidate answers its final step states
    (`answers`: answers of the question's domain, read with the toy oracle's own reader, plus other numbers; `hedge`: two or more),
    whether the reference occurs in it only inside a longer word or number (`embedded`: "63" in "633", "H2O" in "H2O2"), whether it
    restates the question (`echo`), what the substring rule pays (`rule`) and what the grader said (`correct`)."""
    import re
    import pandas as pd
    from rlvr_nb.data import final_step
    from rlvr_nb.toy import toy_world
    from rlvr_nb.verify import contains_reference
    w, rows = toy_world(), []
    for q, ref, resp, ok in zip(df['question'], df['reference'], df['response'], df['correct']):
        f = w.find(q, ref)
        if f is None: raise ValueError(f"not a toy-world question: {q!r}")
        step, m = final_step(resp), w._matchers[f.domain]
        found, rest = m.mentions(step)
        rule = bool(contains_reference(resp, ref))
        bounded = re.search(r'(?<![\w.])' + re.escape(' '.join(ref.split())) + r'(?![\w]|\.\d)', ' '.join(step.split()))
        rows.append({'answers': len(set(found)) + len(set(m.numbers(rest))), 'embedded': rule and bounded is None,
                     'echo': step.startswith('Therefore, the answer is:'), 'rule': rule, 'correct': bool(ok)})
    out = pd.DataFrame(rows, index=df.index)
    out.insert(1, 'hedge', out.answers >= 2)
    return out

def hedging_summary(shapes) -> dict:
    """Shares (%) of `answer_shapes`: accuracy, the rule's reward, hedges, and the answers the rule pays but the grader rejects
    (`rule_false_pos`), with the share of those that hedge or embed the reference."""
    s, h, fp = shapes, shapes[shapes.hedge], shapes[shapes.rule & ~shapes.correct]
    pct = lambda x: round(100 * float(x), 2)
    return {'n': len(s), 'accuracy': pct(s.correct.mean()), 'rule_reward': pct(s.rule.mean()), 'hedge': pct(s.hedge.mean()),
            'rule_pays_hedge': pct(h.rule.mean()) if len(h) else None, 'grader_accepts_hedge': pct(h.correct.mean()) if len(h) else None,
            'rule_false_pos': pct(len(fp) / len(s)), 'false_pos_hedge': pct(fp.hedge.mean()) if len(fp) else None,
            'false_pos_embedded': pct(fp.embedded.mean()) if len(fp) else None, 'echo': pct(s.echo.mean())}

def _training_rewards(metrics: Path, name: str, tail: float = 0.25) -> dict:
    "Mean training reward of the policy's own reward and of the grader (weight 0) over the last `tail` of its steps, in %."
    recs = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()] if metrics.is_file() else []
    out = {}
    for key, col in ((f'rewards/{name}/mean', 'train_reward'), ('rewards/grader/mean', 'train_grader')):
        pts = sorted((r['step'], r['value']) for r in recs if r['name'] == key and r.get('step') is not None and r['value'] is not None)
        if pts: out[col] = round(100 * sum(v for _, v in pts[-max(1, int(len(pts) * tail)):]) / max(1, int(len(pts) * tail)), 2)
    return out

def sweep_shapes(sweep_dirs: Sequence[str | Path]) -> list[dict]:
    """`hedging_summary` of every evaluated policy of every grid point of the sweeps, with the point's key values and seed, and
    for trained policies their own and the grader's mean training reward over the last quarter of the steps."""
    import pandas as pd
    from rlvr_nb.config import RunConfig
    rows = []
    for d in map(Path, sweep_dirs):
        sw = json.loads((d / 'sweep.json').read_text())
        for p in sw['points']:
            run = d / p['output_dir']
            if p['status'] != 'done': continue
            seed = RunConfig.from_yaml(run / 'config.yaml').seed
            for f in sorted((run / 'evaluate').glob('*.parquet')):
                rows.append({'sweep': d.name, 'seed': seed, **p['values'], 'policy': f.stem, **hedging_summary(answer_shapes(pd.read_parquet(f))),
                             **_training_rewards(run / 'train' / f.stem / 'metrics.jsonl', f.stem)})
    return rows

# ---- questions from elsewhere ----------------------------------------------------------------------------------------

_LLM_STYLE = ('Consider the following question carefully. {q} Give your final answer.', 'Here is a question. {q} Answer it.',
              'Read the question and answer it. {q}')
_WEB_STYLE = ('{q} thanks in advance', 'hi all, {q} any help appreciated', 'Q: {q} (homework)')

def restyle_question(question: str, style: str, seed: int = 0) -> str:
    "The question in another `style`: `'llm'` (wrapped in an instruction, as an LLM writes one) or `'web'` (forum phrasing, lower case)."
    from rlvr_nb.toy.world import _h
    if style not in ('llm', 'web'): raise ValueError(f"style must be 'llm' or 'web', not {style!r}")
    rng = random.Random(_h('restyle', style, seed, question))
    if style == 'llm': return rng.choice(_LLM_STYLE).format(q=question)
    return rng.choice(_WEB_STYLE).format(q=question[0].lower() + question[1:])

def toy_ood_sets(train_domains: Sequence[str], n: int = 200, seed: int = 0) -> dict:
    """`'in-domain'` (test questions of `train_domains`) and, on the other domains' test questions, `'held-out domains'` and the same
    in an LLM's and a web forum's phrasing (the grader finds the fact through the unchanged reference: only unambiguous references)."""
    from datasets import Dataset
    from rlvr_nb.data import policy_messages
    from rlvr_nb.toy import TOY_DOMAINS, make_toy_dataset, toy_world
    held = [d for d in TOY_DOMAINS if d not in train_domains]
    if not held: raise ValueError(f"train_domains {list(train_domains)} leave no held-out domain of {list(TOY_DOMAINS)}")
    w = toy_world()
    out = {'in-domain': make_toy_dataset(n, seed=seed, domains=list(train_domains), split='test'),
           'held-out domains': make_toy_dataset(n, seed=seed, domains=held, split='test')}
    base = [r for r in make_toy_dataset(4 * n, seed=seed + 1, domains=held, split='test').to_list() if w.find(None, r['reference']) is not None][:n]
    for style in ('llm', 'web'):
        out[f'held-out domains, {style} questions'] = Dataset.from_list(
            [{**r, 'question': (q := restyle_question(r['question'], style, seed)), 'prompt': policy_messages(q)} for r in base])
    return out

def evaluate_run(run_dir: str | Path, sets: Mapping[str, Any], *, initial: bool = True, max_new_tokens: int = 40,
                 batch_size: int = 64) -> list[dict]:
    "Greedy answers of a run's trained policies (and its initial one) to every set, graded by the noise-free `ToyOracle`: one row per policy and set."
    from rlvr_nb.config import RunConfig
    from rlvr_nb.evaluate import generate_answers, grade
    from rlvr_nb.models import load_causal_lm
    from rlvr_nb.toy import ToyOracle, pretrain_toy_policy
    run = Path(run_dir)
    cfg = RunConfig.from_yaml(run / 'config.yaml')
    pols = {**({'initial': None} if initial else {}), **{p.parent.name: p for p in sorted((run / 'train').glob('*/policy'))}}
    rows = []
    for name, path in pols.items():
        if path is None: model, tok = pretrain_toy_policy(seed=cfg.seed) if cfg.models.policy == 'toy' else load_causal_lm(cfg.models.policy)
        else: model, tok = load_causal_lm(path)
        for sname, ds in sets.items():
            ans = generate_answers(model, ds, tokenizer=tok, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=cfg.seed, progress=False)
            g = grade(ans, ToyOracle(), progress=False)
            rows.append({'run': run.name, 'seed': cfg.seed, 'policy': name, 'set': sname, 'accuracy': round(100 * float(g['correct'].mean()), 2),
                         'n': len(g), **hedging_summary(answer_shapes(g))})
    return rows

def evaluate_sweeps(sweep_dirs: Sequence[str | Path], n: int = 200) -> list[dict]:
    """`evaluate_run` on `toy_ood_sets` of the run's training domains for every complete point of the sweeps (the initial policy once per
    sweep and seed), with the point's key values."""
    from rlvr_nb.config import RunConfig
    rows, seen = [], set()
    for d in map(Path, sweep_dirs):
        for p in json.loads((d / 'sweep.json').read_text())['points']:
            if p['status'] != 'done': continue
            run = d / p['output_dir']
            cfg = RunConfig.from_yaml(run / 'config.yaml')
            first = (d.name, cfg.seed) not in seen; seen.add((d.name, cfg.seed))
            for r in evaluate_run(run, toy_ood_sets(cfg.data.domains or [], n=n), initial=first, max_new_tokens=cfg.evaluate.max_new_tokens):
                rows.append({'sweep': d.name, **p['values'], **r, 'seed': cfg.seed})
    return rows

# ---- the tables of tutorials/scaling.ipynb ----------------------------------------------------------------------------

KEEP = ('sweep', 'seed', 'train.max_steps', 'policy', 'set', 'accuracy', 'n', 'hedge', 'rule_false_pos', 'false_pos_hedge',
        'false_pos_embedded', 'train_reward', 'train_grader')

def gather(sweeps: str | Path, out: str | Path) -> Path:
    "`out/results.json`: the columns of `KEEP` of `SWEEPS/shapes.json`, `ood_default.json` and `ood_hedging.json` (the tutorial's commands), with a `world`."
    sweeps, out = Path(sweeps), Path(out)
    world = lambda files: [{'world': 'default' if r['sweep'] == 'default' else 'hedging', **{k: r[k] for k in KEEP if k in r}}
                           for f in files for r in json.loads((sweeps / f).read_text())]
    out.mkdir(parents=True, exist_ok=True)
    (out / 'results.json').write_text(json.dumps({'shapes': world(['shapes.json']), 'ood': world(['ood_default.json', 'ood_hedging.json'])},
                                                 separators=(',', ':')))
    return out / 'results.json'

def tidy(rows) -> 'pd.DataFrame':
    "One row per world, seed, policy, training prompts (8 per step: one epoch) and set; the initial policy at 0 prompts, once."
    import pandas as pd
    d = pd.DataFrame(rows)
    d['prompts'] = d['train.max_steps'] * 8
    d.loc[d.policy == 'initial', 'prompts'] = 0
    return d.drop_duplicates(['world', 'seed', 'policy', 'prompts'] + (['set'] if 'set' in d else []))

# ---- the figures of tutorials/scaling.ipynb ---------------------------------------------------------------------------

def _save(fig, path) -> None:
    "Save `fig` as a PNG at 80 dpi with a 64-colour palette (line plots keep their colours; the file is a third of the size)."
    import io
    from PIL import Image
    buf = io.BytesIO(); fig.savefig(buf, format='png', dpi=80)
    Image.open(io.BytesIO(buf.getvalue())).convert('RGB').quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)

def plot_table2(shapes, ood, path) -> None:
    """Accuracy against training prompts per base policy (test questions and held-out domains), what the rule-trained policies
    write, and the paper's Table 2; `shapes` and `ood` as the tutorial's `tidy` frames (a `world` and a `prompts` column)."""
    import matplotlib.pyplot as plt
    from rlvr_nb.sweep import paper_table
    t2p = paper_table('table2')
    fig, axs = plt.subplots(1, 4, figsize=(15, 3.6))
    for ax, (w, title) in zip(axs[:2], [('default', 'toy, default base policy'), ('hedging', 'toy, hedging base policy')]):
        for i, pol in enumerate(['rule_binary', 'student_soft']):
            for d, ls, lab in ((shapes, '-', 'test questions'), (ood[ood.set == 'held-out domains'], '--', 'held-out domains')):
                g = d[(d.world == w) & d.policy.isin([pol, 'initial'])]
                if not (g.policy == pol).any(): continue
                m = g.groupby('prompts').accuracy.agg(['mean', 'min', 'max'])
                ax.plot(m.index, m['mean'], ls, marker='o', ms=3, color=f'C{i}', label=f'{pol}, {lab}')
                ax.fill_between(m.index, m['min'], m['max'], color=f'C{i}', alpha=0.12)
        ax.set_xscale('symlog', linthresh=80); ax.set_xticks([0, 80, 160, 320, 640, 1280], ['0', '80', '160', '320', '640', '1280'])
        ax.minorticks_off(); ax.set_title(title, fontsize=10); ax.set_xlabel('training prompts (one epoch)'); ax.grid(alpha=0.3)
    axs[0].set_ylabel('accuracy (%), mean of 2 seeds (band: min-max)'); axs[1].legend(fontsize=7)
    ax = axs[2]
    for i, w in enumerate(['default', 'hedging']):
        g = shapes[(shapes.world == w) & shapes.policy.isin(['rule_binary', 'initial'])].groupby('prompts')[['hedge', 'rule_false_pos']].mean()
        ax.plot(g.index, g.hedge, '-o', ms=3, color=f'C{i + 2}', label=f'{w}: final steps with 2+ answers')
        ax.plot(g.index, g.rule_false_pos, ':s', ms=3, color=f'C{i + 2}', label=f'{w}: paid by the rule, rejected by the grader')
    ax.set_xscale('symlog', linthresh=80); ax.set_xticks([0, 80, 160, 320, 640, 1280], ['0', '80', '160', '320', '640', '1280']); ax.minorticks_off()
    ax.set_title('what the rule-trained policies write (%)', fontsize=10); ax.set_xlabel('training prompts'); ax.grid(alpha=0.3); ax.legend(fontsize=7)
    ax = axs[3]
    for j, (rw, g) in enumerate(t2p.groupby('reward', sort=False)):
        ax.plot(g.train_samples / 1000, g.ms_avg, '-o', ms=3, color=f'C{j}', label=f'{rw}, multi-subject')
        ax.plot(g.train_samples / 1000, g.math_avg, '--s', ms=3, color=f'C{j}', alpha=0.6, label=f'{rw}, math')
    ax.set_title('paper Table 2 (RLOO, binary)', fontsize=10); ax.set_xlabel('training prompts (thousands)'); ax.grid(alpha=0.3); ax.legend(fontsize=7)
    fig.tight_layout(); _save(fig, path); plt.close(fig)

def plot_table3(ood, path) -> None:
    "Out-of-distribution accuracy of the hedging world's policies after 1,280 prompts, per set, beside the paper's Table 3."
    import matplotlib.pyplot as plt
    from rlvr_nb.sweep import paper_table
    t3p = paper_table('table3').set_index('reward')
    big = ood[(ood.world == 'hedging') & ((ood.prompts == 1280) | (ood.policy == 'initial'))]
    t3 = big.groupby(['set', 'policy'], sort=False).accuracy.agg(['mean', 'min', 'max']).round(1)
    sets = list(dict.fromkeys(big.set))
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={'width_ratios': [2.2, 1]})
    for i, pol in enumerate(['initial', 'rule_binary', 'student_soft']):
        m = t3.xs(pol, level='policy').reindex(sets)
        axs[0].bar([k + (i - 1) * 0.27 for k in range(len(sets))], m['mean'], 0.27, yerr=[m['mean'] - m['min'], m['max'] - m['mean']],
                   color=['#bbbbbb', 'C0', 'C1'][i], label=pol, capsize=2)
    axs[0].set_xticks(range(len(sets)), [s.replace('held-out domains, ', 'held-out, ') for s in sets], fontsize=8)
    axs[0].set_ylabel('accuracy (%)'); axs[0].legend(fontsize=8); axs[0].grid(alpha=0.3, axis='y')
    axs[0].set_title('toy, hedging base policy, 1,280 prompts (mean of 2 seeds, bars: min-max)', fontsize=10)
    for i, rw in enumerate(['rule', 'RM-7B']):
        axs[1].bar([k + (i - 0.5) * 0.35 for k in range(2)], t3p.loc[rw, ['natural_reasoning', 'webinstruct']], 0.35, color=f'C{i}', label=rw)
    axs[1].set_xticks(range(2), ['NaturalReasoning', 'WebInstruct'], fontsize=8); axs[1].legend(fontsize=8, loc='lower center'); axs[1].grid(alpha=0.3, axis='y')
    axs[1].set_title('paper Table 3 (RLOO, binary)', fontsize=10)
    fig.tight_layout(); _save(fig, path); plt.close(fig)

# ---- command line ----------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('policy'); p.add_argument('--seed', type=int, default=0); p.add_argument('--p_hedge', type=float, default=0.1)
    s = sub.add_parser('shapes'); s.add_argument('sweeps', nargs='+'); s.add_argument('--json')
    o = sub.add_parser('ood'); o.add_argument('sweeps', nargs='+'); o.add_argument('--n', type=int, default=200); o.add_argument('--json')
    a = ap.parse_args(argv)
    if a.cmd == 'policy': print(hedging_toy_policy(seed=a.seed, p_hedge=a.p_hedge)); return 0
    import pandas as pd
    if a.cmd == 'shapes': rows, tag = sweep_shapes(a.sweeps), 'SCALING_SHAPES'
    else: rows, tag = evaluate_sweeps(a.sweeps, n=a.n), 'SCALING_OOD'
    print(pd.DataFrame(rows).to_string(index=False))
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))
    print(tag, json.dumps(rows))
    return 0

if __name__ == '__main__': sys.exit(main())
