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
- `verifier+share`: the same with group prefix sharing (the default).

Each method runs `--repeats` times, interleaved round-robin after one warm-up; the median is reported. The lm_head
output size of every method is recorded with a forward hook (no method may compute full-vocabulary logits at every
position); on CUDA the peak allocated memory of each method is measured too. Ratios are time ratios
(`verifier_vs_raw` = verifier time / raw time: ≤ 1.15 is the target) and judgments/s ratios
(`prefix_speedup_nN` = verifier+share judgments/s / verifier judgments/s at n = N: ≥ 2 at n = 4 is the target).
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

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--gpu', action='store_true', help='CUDA, Qwen2.5-7B shape in bf16')
    ap.add_argument('--prompts', type=int, default=None, help='judge prompts per batch (default 32 on CPU, 128 with --gpu)')
    ap.add_argument('--q-words', type=int, default=None, help='question length (words; default 5 CPU / 4 GPU); the template itself is ~230 tokens')
    ap.add_argument('--r-words', type=int, default=None, help='final-step length (words after "Therefore, the answer is"; default 6 CPU / 18 GPU)')
    ap.add_argument('--a-words', type=int, default=None, help='reference length (words; default 3 CPU / 10 GPU)')
    ap.add_argument('--clock', choices=('auto', 'cpu', 'wall'), default='auto',
                    help='cpu = process CPU time (robust on a shared CPU box; default on CPU), wall = wall clock (default on CUDA)')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (1: oversubscribed shared boxes make OpenMP timings meaningless)')
    ap.add_argument('--no-generate', action='store_true', help='skip the generate() baseline')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args(argv)
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
        'vocab': V, 'full_logits_elems_would_be': int(a.prompts * results[(4, 'tokens')] * V),
        'max_lm_head_rows': max(r['lm_head_rows'] for r in rows),
        'rows': rows,
    }
    print(f"{out['device']} | {out['shape']} | {a.prompts} prompts, {out['mean_prompt_tokens']} tokens, "
          f"shared {out['shared_fraction_n4']:.0%} (n=4) / {out['shared_fraction_n8']:.0%} (n=8), median of {a.repeats}, {out['clock']}")
    print(f"{'n':>2} {'method':<15} {'median s':>9} {'judg/s':>8} {'lm_head rows':>13} {'peak MiB':>9}  runs")
    for r in rows:
        pk = f"{r['peak_mib']:.0f}" if r['peak_mib'] is not None else '-'
        print(f"{r['n']:>2} {r['method']:<15} {r['median_s']:>9.4f} {r['judgments_per_s']:>8.1f} {r['lm_head_rows']:>13} {pk:>9}  {r['runs']}")
    print(f"verifier/raw {out['verifier_vs_raw']} (target <= 1.15) | generate/raw {out['generate_vs_raw']} | "
          f"prefix speedup n=4 {out['prefix_speedup_n4']}x (target >= 2) n=8 {out['prefix_speedup_n8']}x | "
          f"lm_head never above {out['max_lm_head_rows']} rows (full logits would be {out['full_logits_elems_would_be'] // V} rows)")
    if a.json: print(json.dumps(out))
    return out

if __name__ == '__main__':
    main()
