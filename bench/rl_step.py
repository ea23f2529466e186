"""A few RLVRTrainer steps, timed: a ~0.5B-shaped random Qwen2 in bf16 on CUDA, or a tiny one on CPU.

    python bench/rl_step.py                         # CUDA if present (0.5B shape, bf16), else CPU (tiny shape)
    python bench/rl_step.py --device cpu --shape tiny --steps 2
    python bench/rl_step.py --vllm                  # generation through vLLM (colocate), GPU only

Prompts are toy-world questions with the paper's policy prompt, the reward is the ToyOracle through
`rlvr_nb.reward.make_reward_func`, so every stage runs for real. Prints one line per optimiser step and a
final JSON summary line starting with `RL_STEP`.
"""
import argparse, json, os, sys, tempfile, time

import torch

SHAPES = {  # Qwen2.5-0.5B: 24 layers, hidden 896, 14 heads, 2 KV heads, MLP 4864, vocab 151936
    '0.5b': dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 vocab_size=151936),
    'tiny': dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                 vocab_size=None),
}


def tokenizer(shape):
    "Qwen2.5's tokenizer for the 0.5B shape (the toy tokenizer if it is missing); the toy tokenizer for the tiny shape."
    import rlvr_nb.toy as toy
    if shape != 'tiny' and hasattr(toy, 'qwen_tokenizer'):
        try: return toy.qwen_tokenizer()
        except Exception as e: print(f"qwen_tokenizer unavailable ({e}); using the toy tokenizer", file=sys.stderr)
    return toy.toy_tokenizer()


def build_model(tok, shape, dtype):
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    s = dict(SHAPES[shape])
    s['vocab_size'] = max(s['vocab_size'] or 0, len(tok))
    eos = tok.convert_tokens_to_ids('<|im_end|>')
    cfg = Qwen2Config(**s, max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=None, eos_token_id=eos,
                      pad_token_id=tok.pad_token_id, use_sliding_window=False, dtype=dtype)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(dtype)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id, bos_token_id=None)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', choices=['cuda', 'cpu'], default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--shape', choices=list(SHAPES), default=None)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--batch', type=int, default=None, help='samples per optimiser step (default 32 on CUDA, 8 on CPU)')
    ap.add_argument('--num-generations', type=int, default=4)
    ap.add_argument('--max-completion-length', type=int, default=None, help='default 256 on CUDA, 8 on CPU')
    ap.add_argument('--estimator', default='reinforce_pp')
    ap.add_argument('--beta', type=float, default=0.01)
    ap.add_argument('--vllm', action='store_true', help='generate with vLLM (colocate mode)')
    a = ap.parse_args(argv)
    cuda = a.device == 'cuda'
    if cuda and not torch.cuda.is_available(): sys.exit('--device cuda but no CUDA device')
    if not cuda: torch.set_num_threads(int(os.environ.get('RL_STEP_THREADS', '1')))
    shape = a.shape or ('0.5b' if cuda else 'tiny')
    batch = a.batch or (32 if cuda else 8)
    max_len = a.max_completion_length or (256 if cuda else 8)
    dtype = torch.bfloat16 if cuda else torch.float32

    from transformers import TrainerCallback
    from rlvr_nb.rl import RLVRConfig, RLVRTrainer
    from rlvr_nb.reward import make_reward_func
    from rlvr_nb.toy import ToyOracle, make_toy_dataset

    tok = tokenizer(shape)
    model = build_model(tok, shape, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    ds = make_toy_dataset(batch * a.steps // a.num_generations + a.num_generations, seed=0)
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if cuda: torch.cuda.synchronize()
            self.t = time.perf_counter()
        def on_step_end(self, args, state, control, **kw):
            if cuda: torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            print(f"step {state.global_step}: {times[-1]:.2f} s", flush=True)

    with tempfile.TemporaryDirectory() as out:
        cfg = RLVRConfig(output_dir=out, advantage_estimator=a.estimator, beta=a.beta, num_generations=a.num_generations,
                         per_device_train_batch_size=batch, max_completion_length=max_len, max_steps=a.steps,
                         learning_rate=1e-6, bf16=cuda, use_cpu=not cuda, logging_steps=1, save_strategy='no',
                         report_to='none', disable_dropout=True, use_vllm=a.vllm,
                         **(dict(vllm_mode='colocate', vllm_gpu_memory_utilization=0.3) if a.vllm else {}))
        tr = RLVRTrainer(model, make_reward_func(ToyOracle(), kind='binary'), cfg, train_dataset=ds, processing_class=tok,
                         callbacks=[Timer()])
        tr.train()
        logs = [h for h in tr.state.log_history if 'loss' in h]
    steady = times[1:] or times
    summary = {'device': torch.cuda.get_device_name() if cuda else 'cpu', 'shape': shape, 'params_M': round(n_params / 1e6, 1),
               'dtype': str(dtype).split('.')[-1], 'vllm': a.vllm, 'estimator': a.estimator, 'samples_per_step': batch,
               'max_completion_length': max_len, 'steps': len(times), 'first_step_s': round(times[0], 3),
               'mean_step_s': round(sum(steady) / len(steady), 3),
               'mean_completion_tokens': round(sum(h.get('completions/mean_length', 0) for h in logs) / max(len(logs), 1), 1),
               'kl_reward_last': logs[-1].get('kl_reward') if logs else None}
    print('RL_STEP ' + json.dumps(summary), flush=True)
    return summary


if __name__ == '__main__':
    main()
