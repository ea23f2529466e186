"""Checks moved out of `nbs/08_config.ipynb`, where each function keeps one example: YAML round trips, renamed keys,
unknown keys and bad types, bad YAML files, `check_config`'s refusals one by one, the import-time promise, section
defaults and the toy preset's rewards, an unknown reward, the type check, explained YAML read back, a bad noise rate,
the argument names read from sources, files that cannot be counted, the paper's preset on a CUDA machine, empty
rewards, and stage hashes without the new names."""
import json, os, subprocess, sys, tempfile, warnings
from pathlib import Path

import yaml
from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.config import ConfigError, RunConfig, check_config, load_yaml

def test_yaml_round_trip_and_overrides():
    c = RunConfig.toy()
    test_eq(RunConfig.from_dict(yaml.safe_load(c.to_yaml())), c)
    p = RunConfig.paper()
    test_eq(p.train.rl_args['generation_batch_size'], 512)   # 128 prompts x 4 samples per generation

def test_renamed_keys_read_with_a_warning_and_hash_under_old_names():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        old = RunConfig.from_dict({'distill': {'epochs': 3, 'holdout': 0.1}})
        old2 = RunConfig.toy(**{'distill.epochs': 3, 'distill.holdout': 0.1})
    test_eq(sorted({str(x.message).split("'")[1] for x in w}), ['distill.epochs', 'distill.holdout'])
    assert all(issubclass(x.category, FutureWarning) for x in w)
    new = RunConfig.from_dict({'distill': {'num_train_epochs': 3, 'heldout': 0.1}})
    test_eq(old, new); test_eq(old2, new)
    test_fail(lambda: RunConfig.from_dict({'distill': {'epochs': 3, 'num_train_epochs': 2}}), contains="give only 'distill.num_train_epochs'")

def test_renamed_helper_warns():
    from rlvr_nb.config import _renamed
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        test_eq(_renamed({'distill': {'holdout': 0.1}}, []), {'distill': {'heldout': 0.1}})
    test_eq([x.category for x in w], [FutureWarning])

def test_unknown_keys_and_bad_types():
    test_fail(lambda: RunConfig.from_dict({'train': {'estimater': 'rloo'}}), contains="unknown key 'train.estimater'; did you mean 'estimator'?")
    test_fail(lambda: RunConfig.from_dict({'train': {'max_steps': 'ten'}}), contains="'train.max_steps' must be")
    test_fail(lambda: RunConfig.from_dict({'preset': 'big'}), contains="unknown preset 'big'")

def test_bad_yaml_files_and_exponent_floats():
    _d = Path(tempfile.mkdtemp())
    (_d / 'list.yaml').write_text('- preset: toy\n')
    test_fail(lambda: RunConfig.from_yaml(_d / 'list.yaml', preset='paper'), contains='a run config must be a mapping, not list')
    test_fail(lambda: RunConfig.from_yaml(_d), contains='config file not found')
    test_eq(load_yaml('lr: 5e-7\nb: 1.0e5\nc: -2E+3\nd: e5\ne: 1e\nf: 7'), {'lr': 5e-7, 'b': 1e5, 'c': -2e3, 'd': 'e5', 'e': '1e', 'f': 7})

def test_check_config_refusals():
    test_fail(lambda: check_config(RunConfig.paper(), cuda=False), contains="no CUDA device on this machine")
    test_fail(lambda: check_config(RunConfig.toy(**{'backends.bf16': True}), cuda=False), contains="'backends.bf16: true'")
    test_fail(lambda: check_config(RunConfig.toy(**{'data.test': './missing.jsonl'}), cuda=False), contains="local file not found: ./missing.jsonl")
    test_fail(lambda: check_config(RunConfig.toy(**{'train.rewards': ['rule_binary', 'rule_hard']})), contains="'rule_hard'")
    test_fail(lambda: check_config(RunConfig.toy(**{'models.grader': 'toy-oracle@2'})), contains="noise rate must be in [0, 1)")
    c = RunConfig.toy(); c.train.max_steps = 'many'      # mutated in code: still caught
    test_fail(lambda: check_config(c), contains="'train.max_steps' must be")

def _errors(**kw) -> str:
    try: check_config(RunConfig.toy(**kw), cuda=False); return ''
    except ConfigError as e: return str(e)

def test_numbers_groups_passed_through_keys_and_files():
    _d = Path(tempfile.mkdtemp())
    (_d / 'a.jsonl').write_text('{"question": "q1", "reference": "r"}\n\n{"question": "q2", "reference": "r"}\n')
    (_d / 'a.json').write_text(json.dumps([{'question': f'q{i}', 'reference': 'r'} for i in range(5)], indent=1))
    bad = {'train.learning_rate': -1e-3, 'explore.learning_rate': float('nan'), 'distill.learning_rate': float('inf'), 'train.temperature': 0.0,
           'explore.per_device_train_batch_size': -8, 'train.max_completion_length': 0, 'agreement.bootstrap': -1, 'seed': -1,
           'distill.max_length': 0, 'train.beta': -0.1, 'distill.num_train_epochs': 0, 'distill.augment_rate': 1.0}
    msg = _errors(**bad)
    for k in bad: assert f"'{k}' must be" in msg, k
    test_eq(msg.count('\n  - '), len(bad))                                            # one line per problem, all at once
    assert "not a multiple of 'train.num_generations' (4)" in _errors(**{'train.per_device_train_batch_size': 6})
    os.environ['WORLD_SIZE'] = '3'                                                     # 8 x 3 processes: 24 samples, groups of 5 split
    try: assert "'train.per_device_train_batch_size' (8) x WORLD_SIZE (3) = 24 samples" in _errors(**{'train.per_device_train_batch_size': 8, 'train.num_generations': 5})
    finally: del os.environ['WORLD_SIZE']
    test_eq(_errors(**{'train.per_device_train_batch_size': 8, 'train.num_generations': 8}), '')
    msg2 = _errors(**{'train.rl_args': {'generation_batch_sise': 64}})
    assert "unknown key 'train.rl_args.generation_batch_sise'" in msg2 and "did you mean 'generation_batch_size'?" in msg2
    assert "'train.rl_args.learning_rate' is set by 'train.learning_rate'" in _errors(**{'train.rl_args': {'learning_rate': 1e-4}})
    assert "unknown key 'distill.sft_args.warmup_step'" in _errors(**{'distill.sft_args': {'warmup_step': 0.1}})
    assert "'distill.sft_args.seed' is set by 'seed'" in _errors(**{'distill.sft_args': {'seed': 1}})
    test_eq(_errors(**{'distill.sft_args': {'micro_batch_size': 8, 'score_labelled_only': False, 'gradient_checkpointing': True}}), '')
    assert "'data.domains' has unknown domains ['physics']" in _errors(**{'data.domains': ['math', 'physics']})
    assert "lies under" in _errors(output_dir=str(_d / 'a.jsonl' / 'run')) and 'is a file, not a directory' in _errors(output_dir=str(_d / 'a.json'))
    assert "'data.n_test' is 200, but the file of 'data.test'" in _errors(**{'models.policy': str(_d), 'data.train': str(_d / 'a.json'), 'data.test': str(_d / 'a.jsonl')})

def test_importing_config_pulls_in_no_model_library():
    r = subprocess.run([sys.executable, '-c', "import sys, rlvr_nb.config; print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas', 'numpy') if m in sys.modules))"],
                       capture_output=True, text=True)
    test_eq(r.stdout.strip(), '[]')

def test_section_defaults_and_type_check():
    from rlvr_nb.config import DistillConfig, TrainConfig, _type_ok
    test_eq((TrainConfig().rewards, DistillConfig().sft_args['micro_batch_size']), (['rule_binary', 'rule_soft', 'student_soft'], 32))
    test_eq((_type_ok(3, int | None), _type_ok(True, int), _type_ok(0.5, float)), (True, False, True))

def test_explained_yaml_reads_back_and_every_key_has_help():
    from dataclasses import fields
    from rlvr_nb.config import _SECTIONS
    for cfg in (RunConfig.toy(), RunConfig.paper()):
        test_eq(RunConfig.from_dict(yaml.safe_load(cfg.to_yaml(explain=True))), cfg)
        assert all(f.metadata.get('help') for sec in [cfg] + [getattr(cfg, s) for s in _SECTIONS] for f in fields(sec))

def test_oracle_noise_argument_names_and_uncountable_files():
    from rlvr_nb.config import count_rows, parse_oracle_spec, rl_arg_names, sft_arg_names, toy_domains
    test_fail(lambda: parse_oracle_spec('toy-oracle@2'), contains='noise rate must be in [0, 1)')
    rl, sft = rl_arg_names(), sft_arg_names()
    assert not {'self', 'trainer_kwargs', 'kwargs'} & (rl | sft)
    test_eq(set(toy_domains()), {'math', 'chemistry', 'economics', 'medicine', 'history'})
    _d = Path(tempfile.mkdtemp())
    test_eq(count_rows(_d / 'missing.jsonl'), None); test_eq(count_rows(_d), None)

def test_check_config_paper_on_cuda_and_empty_rewards():
    check_config(RunConfig.paper(), cuda=True)
    test_fail(lambda: check_config(RunConfig.toy(**{'train.rewards': []})), contains="'train.rewards' is empty")

def test_toy_preset_rewards():
    c = RunConfig.toy()
    test_eq(c.train.rewards, ['rule_binary', 'rule_soft', 'student_soft'])

def test_unknown_reward_name():
    from rlvr_nb.config import parse_reward
    test_fail(lambda: parse_reward('rule_hard'), contains='unknown reward')

def test_stage_hash_has_no_new_name():
    new = RunConfig.from_dict({'distill': {'num_train_epochs': 3, 'heldout': 0.1}})
    assert 'num_train_epochs' not in new.hash_dict()['distill']
