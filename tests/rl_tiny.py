"""Tiny real fixtures for the RL tests (a character tokenizer and a random Qwen2), and the script the
multi-process test launches:

    torchrun --nproc_per_node 2 tests/rl_tiny.py OUT_DIR [ESTIMATOR]

Each rank writes OUT_DIR/rank{R}.pt with its final weights, the advantages it trained on and its world size.
"""
import os, string, sys

import torch

PAD, EOS = '<pad>', '<eos>'

def char_tokenizer():
    "A character-level fast tokenizer (letters, digits, punctuation, space, newline) with pad and eos tokens."
    from tokenizers import Tokenizer, Regex, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    chars = list(string.ascii_letters + string.digits + string.punctuation + ' \n')
    vocab = {c: i for i, c in enumerate([PAD, EOS] + chars)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex('.|\n'), behavior='isolated')
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token=PAD, eos_token=EOS)

def tiny_policy(tok, hidden=32, layers=1, seed=0):
    "A randomly initialised Qwen2 causal LM for `tok`."
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
                      tie_word_embeddings=False)
    return Qwen2ForCausalLM(cfg)

def prompt_dataset(n=8):
    from datasets import Dataset
    return Dataset.from_dict({'prompt': [f"Q{i}: 2+{i}=" for i in range(n)], 'answer': [str(2 + i) for i in range(n)]})

def digit_reward(completions, **kw):
    "1.0 when the completion contains a digit, else 0.0 (a reward the random policy sometimes earns)."
    return [1.0 if any(ch.isdigit() for ch in c) else 0.0 for c in completions]

def weights(model):
    return {k: v.detach().clone().float().cpu() for k, v in model.state_dict().items()}

def main(out_dir, estimator='rloo'):
    torch.set_num_threads(1)
    from rlvr_nb.rl import RLVRConfig, RLVRTrainer
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    tok = char_tokenizer()
    model = tiny_policy(tok)
    cfg = RLVRConfig.toy(os.path.join(out_dir, 'run'), advantage_estimator=estimator, beta=0.05, learning_rate=1e-2,
                         per_device_train_batch_size=4, num_generations=4, max_completion_length=8, max_steps=3,
                         reward_norm='none', seed=0)
    seen = []
    class Spy(RLVRTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            seen.append({'advantages': out['advantages'].cpu(), 'world': self.accelerator.num_processes,
                         'index': self.accelerator.process_index, 'raw': self._raw_rewards.cpu()})
            return out
    tr = Spy(model, digit_reward, cfg, train_dataset=prompt_dataset(8), processing_class=tok)
    tr.train()
    torch.save({'weights': weights(tr.model), 'seen': seen, 'rank': rank, 'world': world,
                'log': tr.state.log_history}, os.path.join(out_dir, f'rank{rank}.pt'))

if __name__ == '__main__':
    main(*sys.argv[1:])
