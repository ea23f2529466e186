"""Behaviour tests of rlvr_nb.rl on real (tiny) TRL runs: a fake subclass that kept TRL's advantages fails them."""
import math, os, sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from rl_tiny import char_tokenizer, tiny_policy, prompt_dataset, weights, digit_reward  # noqa: E402

from rlvr_nb.rl import RLVRConfig, RLVRTrainer, compute_advantages, train_policy  # noqa: E402


@pytest.fixture(scope='module')
def tok(): return char_tokenizer()


def cfg(tmp_path, **kw):
    d = dict(per_device_train_batch_size=8, num_generations=4, max_completion_length=6, max_steps=1, learning_rate=1e-2,
             seed=0)
    return RLVRConfig.toy(str(tmp_path / 'run'), **{**d, **kw})


class Spy(RLVRTrainer):
    "Records what the loss receives: advantages and the raw rewards of every scoring step."
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []
    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.seen.append({k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in out.items()})
        return out


def constant_one(completions, **kw): return [1.0] * len(completions)


def changed(a, b): return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('est,norm,moves', [('reinforce', 'none', True), ('grpo', 'batch', False),
                                            ('reinforce', 'batch', False), ('rloo', 'none', False),
                                            ('reinforce_pp', 'none', False)])
def test_constant_reward(tmp_path, tok, est, norm, moves):
    "Constant reward 1.0: only un-normalised REINFORCE moves the weights (zero advantages elsewhere; weight decay 0)."
    model = tiny_policy(tok)
    w0 = weights(model)
    tr = Spy(model, constant_one, cfg(tmp_path, advantage_estimator=est, reward_norm=norm, weight_decay=0.0),
             train_dataset=prompt_dataset(8), processing_class=tok)
    tr.train()
    adv = tr.seen[0]['advantages']
    assert (adv.abs().sum() > 0) == moves
    assert changed(w0, weights(tr.model)) == moves


ORDERED = [1., 0., 0., 0., 1., 1., 0., 0.]
def ordered_reward(completions, **kw):
    "A known reward in batch order, whatever was sampled."
    assert len(completions) == len(ORDERED)
    return list(ORDERED)


@pytest.mark.parametrize('est,norm,expected', [
    ('rloo', 'none', [1., -1/3, -1/3, -1/3, 2/3, 2/3, -2/3, -2/3]),
    ('reinforce', 'batch', [(r - .375) / math.sqrt(.375 * .625) for r in ORDERED]),
    ('grpo', 'none', [.75 / (.5 + 1e-4), -.25 / (.5 + 1e-4), -.25 / (.5 + 1e-4), -.25 / (.5 + 1e-4),
                      .5 / (math.sqrt(1/3) + 1e-4), .5 / (math.sqrt(1/3) + 1e-4),
                      -.5 / (math.sqrt(1/3) + 1e-4), -.5 / (math.sqrt(1/3) + 1e-4)]),
])
def test_known_reward_gives_expected_advantages(tmp_path, tok, est, norm, expected):
    "The loss receives our advantages (hand-computed), not TRL's group-scaled ones; the logs report them too."
    tr = Spy(tiny_policy(tok), ordered_reward, cfg(tmp_path, advantage_estimator=est, reward_norm=norm, beta=0.0),
             train_dataset=prompt_dataset(8), processing_class=tok)
    # the sampler shuffles prompts but keeps groups consecutive; read the advantages before TRL's shuffle
    tr.train()
    got = tr.seen[0]['advantages']
    assert got.shape == (8,)
    assert torch.allclose(got, torch.tensor(expected), atol=1e-4), got
    assert list(tr._logs['advantages'])[-8:] == pytest.approx(expected, abs=1e-4)
    log = tr.state.log_history[0]
    assert log['advantages/max'] == pytest.approx(max(expected), abs=1e-4)


def test_kl_in_reward_uses_explicit_frozen_reference(tmp_path, tok):
    "kl_in_reward: TRL's beta stays 0 (no reload from _name_or_path, no loss KL); the reference is the initial policy."
    model = tiny_policy(tok)
    model.config._name_or_path = '/nonexistent/checkpoint'   # TRL would try to reload this
    w0 = weights(model)
    c = cfg(tmp_path, advantage_estimator='reinforce', beta=0.1, max_steps=3, reward_norm='none')
    tr = Spy(model, digit_reward, c, train_dataset=prompt_dataset(8), processing_class=tok)
    assert tr.beta == 0.0 and tr.kl_coef == 0.1 and c.beta == 0.1
    assert tr.ref_model is not None and tr.ref_model is not tr.model
    tr.train()
    assert not changed(w0, weights(tr.ref_model))          # reference frozen at the initial policy
    assert changed(w0, weights(tr.model))
    adv = [s['advantages'] for s in tr.seen]
    assert all(a.dim() == 2 for a in adv)
    # step 1: policy == reference, so the return is the reward; later steps carry a KL return
    logs = [h for h in tr.state.log_history if 'kl_reward' in h]
    assert logs[0]['kl_reward'] == 0.0 and any(h['kl_reward'] != 0.0 for h in logs[1:])
    assert all('kl' not in h for h in tr.state.log_history)   # no TRL loss KL
    # the token advantages are the reward minus beta times the KL-to-go: not constant along a completion
    assert any((a[:, 0] != a[:, 1]).any() for a in adv[1:])


def test_grpo_beta_uses_explicit_reference_in_loss(tmp_path, tok):
    "grpo with beta>0: KL stays in TRL's loss, against our explicit reference (no reload from _name_or_path)."
    model = tiny_policy(tok)
    model.config._name_or_path = '/nonexistent/checkpoint'
    tr = Spy(model, digit_reward, cfg(tmp_path, advantage_estimator='grpo', beta=0.1, max_steps=2), train_dataset=prompt_dataset(8),
             processing_class=tok)
    assert tr.beta == 0.1 and tr.kl_coef == 0.0 and tr.ref_model is not None
    tr.train()
    assert any('kl' in h for h in tr.state.log_history)
    assert tr.seen[0]['advantages'].dim() == 1


def test_peft_reference_is_base_with_adapters_off(tmp_path, tok):
    from peft import LoraConfig
    model = tiny_policy(tok)
    c = cfg(tmp_path, advantage_estimator='rloo', beta=0.1, max_steps=3, learning_rate=5e-2, reward_norm='none')
    tr = Spy(model, digit_reward, c, train_dataset=prompt_dataset(8), processing_class=tok,
             peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj']))
    assert tr.ref_model is None and tr.beta == 0.0
    base0 = {k: v.clone() for k, v in tr.model.state_dict().items() if 'lora' not in k}
    tr.train()
    assert all(torch.equal(base0[k], v) for k, v in tr.model.state_dict().items() if 'lora' not in k)
    logs = [h['kl_reward'] for h in tr.state.log_history if 'kl_reward' in h]
    assert logs[0] == 0.0 and any(x != 0.0 for x in logs[1:])


def test_accumulation_weights_none_rewards_and_resume(tmp_path, tok):
    """Gradient accumulation with several optimiser steps per generation (TRL computes old log-probs), two weighted
    reward functions, a reward function returning None, then checkpoint and resume."""
    calls = {'n': 0}
    def sometimes_none(completions, **kw):
        calls['n'] += 1
        return [None] + [0.5] * (len(completions) - 1)
    def second(completions, **kw): return [None] + [float(len(c) % 2) for c in completions[1:]]
    c = cfg(tmp_path, advantage_estimator='reinforce_pp_baseline', per_device_train_batch_size=4, gradient_accumulation_steps=2,
            steps_per_generation=4, reward_weights=[1.0, 2.0], beta=0.05, max_steps=2, save_strategy='steps', save_steps=1)
    tr = Spy(tiny_policy(tok), [sometimes_none, second], c, train_dataset=prompt_dataset(8), processing_class=tok)
    tr.train()
    assert len(tr.seen) == 1 and calls['n'] == 1        # 2 optimiser steps from one generation of 16 samples
    out = tr.seen[0]
    assert 'old_per_token_logps' in out and out['advantages'].shape == out['completion_mask'].shape
    raw = tr._raw_rewards.cpu()
    unscorable = torch.isnan(raw).all(1)
    assert unscorable.any()
    assert (out['advantages'][unscorable] == 0).all()   # before TRL's shuffle, rows keep batch order
    assert os.path.isdir(tmp_path / 'run' / 'checkpoint-1')
    c2 = cfg(tmp_path, advantage_estimator='reinforce_pp_baseline', per_device_train_batch_size=4, gradient_accumulation_steps=2,
             steps_per_generation=4, reward_weights=[1.0, 2.0], beta=0.05, max_steps=3, save_strategy='no')
    tr2 = train_policy(tiny_policy(tok), prompt_dataset(8), [sometimes_none, second], c2, processing_class=tok,
                       resume_from_checkpoint=str(tmp_path / 'run' / 'checkpoint-1'))
    assert tr2.state.global_step == 3


def test_monitor_logs_non_answers_and_parse_failures(tmp_path, tok):
    def judged(completions, **kw):
        judged.last_parse_failures = [i % 4 == 0 for i in range(len(completions))]
        return [0.0] * len(completions)
    judged.last_parse_failures = None
    tr = Spy(tiny_policy(tok), judged, cfg(tmp_path, advantage_estimator='rloo'), train_dataset=prompt_dataset(8),
             processing_class=tok)
    tr.train()
    h = tr.state.log_history[0]
    assert h['monitor/parse_failure_rate'] == pytest.approx(0.25)
    assert 0.0 <= h['monitor/non_answer_rate'] <= 1.0 and h['monitor/completion_length'] > 0


def test_config_errors(tmp_path, tok):
    from trl import GRPOConfig
    with pytest.raises(ValueError, match='both set'): RLVRConfig.toy(str(tmp_path), scale_rewards='batch')
    with pytest.raises(ValueError, match='advantage_estimator must be'): RLVRConfig.toy(str(tmp_path), advantage_estimator='ppo')
    with pytest.raises(TypeError, match='RLVRConfig'):
        RLVRTrainer(tiny_policy(tok), digit_reward, GRPOConfig(str(tmp_path), use_cpu=True, bf16=False),
                    train_dataset=prompt_dataset(8), processing_class=tok)
    with pytest.raises(ValueError, match="'prompt' column"):
        train_policy(tiny_policy(tok), prompt_dataset(8).rename_column('prompt', 'q'), digit_reward,
                     cfg(tmp_path), processing_class=tok)


def test_bench_rl_step_runs_on_cpu():
    "bench/rl_step.py (used by bench/gpu_check.sh on CUDA) runs its tiny CPU shape and reports step times."
    import runpy
    main = runpy.run_path(os.path.join(os.path.dirname(__file__), '..', 'bench', 'rl_step.py'))['main']
    s = main(['--device', 'cpu', '--shape', 'tiny', '--steps', '2', '--max-completion-length', '6'])
    assert s['steps'] == 2 and s['mean_step_s'] > 0 and s['shape'] == 'tiny'


def test_monitor_reads_parse_failures_from_make_reward_func(tmp_path, tok):
    "rlvr_nb.reward.make_reward_func reports `<name>/parse_failure_rate` through TRL's log_metric; the monitor picks it up."
    from datasets import Dataset
    from rlvr_nb.reward import make_reward_func
    from rlvr_nb.verify import Verdict, Verifier

    class EveryOtherFails(Verifier):
        name = 'half'
        def judge(self, questions, responses, references):
            return [Verdict('YES', 1.0, 0.0) if i % 2 else Verdict(None) for i in range(len(responses))]

    ds = Dataset.from_dict({'prompt': [f'Q{i}: 1+{i}=' for i in range(8)], 'question': [f'1+{i}' for i in range(8)],
                            'reference': [str(1 + i) for i in range(8)]})
    tr = Spy(tiny_policy(tok), make_reward_func(EveryOtherFails(), kind='binary'), cfg(tmp_path, advantage_estimator='rloo'),
             train_dataset=ds, processing_class=tok)
    tr.train()
    assert tr.state.log_history[0]['monitor/parse_failure_rate'] == pytest.approx(0.5)


def test_unscorable_is_decided_over_weighted_rewards(tmp_path, tok):
    """A judge that failed on some rows (None, `on_judge_error='exclude'`) beside a weight-0 monitor that always scores:
    the rows count as unscorable (advantage 0), not as reward 0 from the monitor's number."""
    EXCL = [None, 1., 0., 0., None, 1., 0., 1.]
    def judge(completions, **kw): return list(EXCL)
    def monitor(completions, **kw): return [1.0] * len(completions)
    tr = Spy(tiny_policy(tok), [judge, monitor], cfg(tmp_path, advantage_estimator='reinforce', reward_norm='batch', beta=0.0,
                                                      reward_weights=[1.0, 0.0]), train_dataset=prompt_dataset(8), processing_class=tok)
    tr.train()
    adv = tr.seen[0]['advantages']
    scored = torch.tensor([x for x in EXCL if x is not None])
    want = [0.0 if x is None else (x - scored.mean().item()) / scored.std(unbiased=False).item() for x in EXCL]
    assert torch.allclose(adv, torch.tensor(want), atol=1e-4), adv
