"""Checks moved out of `nbs/06_rl.ipynb`, where `compute_advantages` keeps its hand-computed example: RLOO groups and NaN
rows, RLOO with KL, REINFORCE++ whitening, constant rewards and refusals, the non-answer rule, config refusals, RLOO on
the batch z-score, REINFORCE without normalisation, and both normalisations at once."""
import math

import torch
from fastcore.test import test_close, test_eq, test_fail
for _f in (test_close, test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.rl import ESTIMATORS, RLVRConfig, compute_advantages, hacking_stats, is_non_answer

KL = torch.tensor([[0.2, 0.4, 9.9], [0.1, 0.0, 0.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])

def test_rloo_groups_nan_rows_and_group_norm():
    test_close(compute_advantages(torch.tensor([1., 0., 0.]), 3, 'rloo', reward_norm='none'), torch.tensor([1., -.5, -.5]))
    test_close(compute_advantages(torch.tensor([1., float('nan'), 0.]), 3, 'rloo', reward_norm='none'), torch.tensor([1., 0., -1.]))
    test_close(compute_advantages(torch.tensor([1., float('nan'), float('nan')]), 3, 'rloo', reward_norm='none'), torch.zeros(3))
    # NaN rows are left out of the batch z-score: (1, NaN, 0, 0) is z-scored over (1, 0, 0)
    zn = (torch.tensor([1., 0., 0.]) - 1/3) / math.sqrt(2/9)
    test_close(compute_advantages(torch.tensor([1., float('nan'), 0., 0.]), 2, 'reinforce'), torch.tensor([zn[0], 0., zn[1], zn[2]]), eps=1e-5)
    # group z-score: within each group, then a constant group gives zeros
    test_close(compute_advantages(torch.tensor([1., 0., 1., 1.]), 2, 'reinforce', reward_norm='group'), torch.tensor([1., -1., 0., 0.]))

def test_rloo_with_kl():
    # RLOO with KL: baseline first (1 - 0 = 1, 0 - 1 = -1), then the same return
    a = compute_advantages(torch.tensor([1., 0.]), 2, 'rloo', kl=KL, mask=MASK, beta=0.5, reward_norm='none')
    test_close(a, torch.tensor([[0.7, 0.8, 0.], [-1.05, 0., 0.]]))

def test_reinforce_pp_whitening():
    "Rewards (1, 0) on 2 and 1 valid tokens: token returns (1, 1 | 0), mean 2/3, population std sqrt(2/9)."
    w = 1 / math.sqrt(2/9)
    expected = torch.tensor([[(1-2/3)*w, (1-2/3)*w, 0.], [(0-2/3)*w, 0., 0.]])
    test_close(compute_advantages(torch.tensor([1., 0.]), 2, 'reinforce_pp', mask=MASK, reward_norm='none'), expected, eps=1e-5)
    test_close(compute_advantages(torch.tensor([1., 0.]), 2, 'reinforce_pp_baseline', mask=MASK, reward_norm='none'), expected, eps=1e-5)
    # with KL: returns (0.7, 0.8 | -0.05), whitened
    ret = torch.tensor([0.7, 0.8, -0.05]); zz = (ret - ret.mean()) / ret.std(unbiased=False)
    a = compute_advantages(torch.tensor([1., 0.]), 2, 'reinforce_pp', kl=KL, mask=MASK, beta=0.5, reward_norm='none')
    test_close(a, torch.tensor([[zz[0], zz[1], 0.], [zz[2], 0., 0.]]), eps=1e-5)
    # reinforce_pp_baseline with two groups of two: (1, 0 | 1, 1) -> (0.5, -0.5 | 0, 0), whitened over one token each
    m1 = torch.ones(4, 1)
    b = torch.tensor([.5, -.5, 0., 0.]); bz = (b - b.mean()) / b.std(unbiased=False)
    test_close(compute_advantages(torch.tensor([1., 0., 1., 1.]), 2, 'reinforce_pp_baseline', mask=m1, reward_norm='none'), bz[:, None], eps=1e-5)

def test_constant_rewards_give_zero_advantages_and_refusals():
    ones = torch.ones(8)
    for est in ESTIMATORS:
        test_eq(compute_advantages(ones, 4, est, mask=torch.ones(8, 3)).abs().sum().item(), 0.0)
        test_eq(compute_advantages(ones * 0.3, 4, est, mask=torch.ones(8, 3), reward_norm='none').abs().sum().item() == 0.0,
                est != 'reinforce')
    test_fail(lambda: compute_advantages(torch.ones(5), 2, 'rloo'), contains='multiple of num_generations')
    test_fail(lambda: compute_advantages(torch.ones(4), 2, 'ppo'), contains='estimator must be one of')
    test_fail(lambda: compute_advantages(torch.ones(4), 2, 'reinforce_pp'), contains='pass `mask`')
    test_fail(lambda: compute_advantages(torch.tensor([1., float('inf')]), 2, 'rloo'), contains='rows [1]')
    test_fail(lambda: compute_advantages(torch.ones(2), 2, 'grpo', kl=torch.zeros(2, 3)), contains='KL in the loss')
    test_eq(compute_advantages(torch.ones(4), 2, 'reinforce', kl=torch.zeros(4, 3), mask=torch.ones(4, 3)).shape, (4, 3))

def test_non_answers():
    test_eq([is_non_answer(x) for x in ['Thought Process:', 'thought process', '', '  \n ', '...', '\n:\n', 'Step 1:']], [True]*7)
    test_eq([is_non_answer(x) for x in ['Therefore, the answer is 42', 'x\n12 kPa', 'Answer: mitochondria', 'Solution: NaCl']], [False]*4)
    test_eq(is_non_answer([{'role': 'assistant', 'content': 'I think\nThought Process:'}]), True)
    test_eq(is_non_answer([{'role': 'assistant', 'content': 'x = 4'}]), False)

def test_rlvr_config_presets_and_refusals():
    cfg = RLVRConfig.paper('/tmp/rl_nb/paper', bf16=torch.cuda.is_available())
    test_eq(cfg.steps_per_generation // cfg.gradient_accumulation_steps, 4)   # 4 optimiser steps per generation
    test_fail(lambda: RLVRConfig.toy(advantage_estimator='grpo', kl_in_reward=True), contains='KL in the loss')
    test_eq(RLVRConfig.toy(advantage_estimator=None).scale_rewards, 'group')

def test_rloo_run_in_the_toy_world_reports_a_held_out_curve():
    "The notebook's short learning check: six RLOO steps from the pretrained toy policy, graded on held-out questions."
    import contextlib, copy, io, time
    from transformers import TrainerCallback
    from rlvr_nb.evaluate import generate_answers
    from rlvr_nb.reward import make_reward_func
    from rlvr_nb.rl import train_policy
    from rlvr_nb.toy import ToyOracle, make_toy_dataset, pretrain_toy_policy

    def held_out_accuracy(model, tok, ds, max_new_tokens=48) -> float:
        "Share of `ds` whose greedy answer the (noise-free) oracle marks correct."
        was = model.training; model.eval()
        out = generate_answers(model, ds, tokenizer=tok, max_new_tokens=max_new_tokens, temperature=0.0, progress=False, batch_size=64)
        model.train(was)
        return sum(ToyOracle().correct(out['question'], out['response'], out['reference'])) / len(out)

    class HeldOutCurve(TrainerCallback):
        "Held-out accuracy every `every` optimiser steps (its time is kept apart from the training time)."
        def __init__(self, tok, ds, every, acc0):
            self.tok, self.ds, self.every, self.curve, self.eval_s, self.eval_cpu = tok, ds, every, [(0, acc0)], 0.0, 0.0
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % self.every == 0 or state.global_step == state.max_steps:
                t, c = time.time(), time.process_time()
                self.curve.append((state.global_step, held_out_accuracy(model, self.tok, self.ds)))
                self.eval_s += time.time() - t; self.eval_cpu += time.process_time() - c

    TOY_RL = dict(steps=40, lr=1e-3, batch=32, temperature=0.7, max_len=40, beta=0.01, every=10)

    def toy_rl_run(policy, tok, estimator, seed, test, acc0, *, steps, lr, batch, temperature, max_len, beta, every, **kw):
        "Train a copy of `policy` with `estimator` against the ToyOracle reward; the held-out curve and timings."
        cb = HeldOutCurve(tok, test, every, acc0)
        cfg = RLVRConfig.toy(f'/tmp/rl_nb/toy-{estimator}-{seed}', advantage_estimator=estimator, learning_rate=lr, max_steps=steps,
                             per_device_train_batch_size=batch, num_generations=4, max_completion_length=max_len, beta=beta,
                             temperature=temperature, seed=seed, logging_steps=1, disable_tqdm=True, **kw)
        t, c = time.time(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):   # TRL prints every log line
            tr = train_policy(copy.deepcopy(policy), make_toy_dataset(steps * batch // 4, seed=100 + seed), make_reward_func(ToyOracle(), kind='binary'),
                              cfg, processing_class=tok, callbacks=[cb])
        logs = [h for h in tr.state.log_history if 'reward' in h]
        return dict(estimator=estimator, seed=seed, before=acc0, after=cb.curve[-1][1], curve=cb.curve,
                    reward=[h['reward'] for h in logs], non_answer=[h['monitor/non_answer_rate'] for h in logs],
                    train_s=time.time() - t - cb.eval_s, train_cpu_s=time.process_time() - c - cb.eval_cpu)

    policy, ptok = pretrain_toy_policy()
    test_set = make_toy_dataset(128, seed=1, split='test')
    acc0 = held_out_accuracy(policy, ptok, test_set)
    quick = toy_rl_run(policy, ptok, 'rloo', 0, test_set, acc0, **{**TOY_RL, 'steps': 6, 'every': 6})
    test_eq(len(quick['reward']), 6); test_eq([s for s, _ in quick['curve']], [0, 6])
    assert 0 < quick['before'] < 1 and 0 <= quick['after'] <= 1, quick

def test_rloo_on_the_batch_z_score_and_both_normalisations():
    "Moved from the notebook's hand-computed example (rewards (1, 0, 1, 1) in two groups) and the toy config."
    r = torch.tensor([1., 0., 1., 1.])
    z = (r - 0.75) / math.sqrt(0.1875)
    test_close(compute_advantages(r, 2, 'rloo'), torch.tensor([z[0]-z[1], z[1]-z[0], 0., 0.]), eps=1e-5)
    test_fail(lambda: RLVRConfig.toy(scale_rewards='group'), contains='both set')

def test_reinforce_without_normalisation_is_the_reward():
    r = torch.tensor([1., 0., 1., 1.])
    test_close(compute_advantages(r, 2, 'reinforce', reward_norm='none'), r)
