"""The `rlvr` console script: help, bad configs refused before any work, a small run, `rlvr report`, a failing stage."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch

from rlvr_nb.cli import main

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}

def rlvr(*args, cwd=None):
    "Run the installed console script (falls back to `python -c` on the same entry point when not on PATH)."
    import shutil
    exe = shutil.which('rlvr')
    cmd = [exe, *args] if exe else [sys.executable, '-c', 'import sys; from rlvr_nb.cli import main; sys.exit(main())', *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)

def test_help():
    r = rlvr('run', '--help')
    assert r.returncode == 0, r.stderr
    for opt in ('--config', '--preset', '--stage', '--output_dir', '--set', '--force', '--dry_run'): assert opt in r.stdout
    r = rlvr('report', '--help'); assert r.returncode == 0 and '--output_dir' in r.stdout
    r = rlvr(); assert r.returncode == 2 and 'usage: rlvr' in r.stdout
    r = rlvr('rnu'); assert r.returncode == 2 and "did you mean 'run'?" in r.stderr

def test_bad_config_refused_before_work(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('preset: toy\ntrain:\n  estimater: rloo\n  max_steps: many\nseeed: 3\n')
    out = tmp_path / 'out'
    r = rlvr('run', '--config', str(bad), '--output_dir', str(out))
    assert r.returncode == 2
    for msg in ("unknown key 'train.estimater'; did you mean 'estimator'?", "'train.max_steps' must be", "unknown key 'seeed'; did you mean 'seed'?"):
        assert msg in r.stderr, r.stderr
    assert not out.exists()                      # nothing was written: refused before any work
    r = rlvr('run', '--set', f'data.test={tmp_path}/missing.jsonl', '--output_dir', str(out))
    assert r.returncode == 2 and 'local file not found' in r.stderr and not out.exists()
    r = rlvr('run', '--stage', 'trian', '--output_dir', str(out))
    assert r.returncode == 2 and "did you mean 'train'" in r.stderr and not out.exists()
    r = rlvr('run', '--config', str(tmp_path / 'nope.yaml'))
    assert r.returncode == 2 and 'config file not found' in r.stderr

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only refusal')
def test_gpu_only_options_refused_on_cpu(tmp_path):
    out = tmp_path / 'out'
    r = rlvr('run', '--preset', 'paper', '--stage', 'train', '--output_dir', str(out))
    assert r.returncode == 2 and 'no CUDA device' in r.stderr and 'Qwen/Qwen2.5-7B' in r.stderr and not out.exists()
    r = rlvr('run', '--set', 'backends.bf16=true', '--output_dir', str(out))
    assert r.returncode == 2 and "'backends.bf16: true'" in r.stderr

def test_dry_run_and_config(tmp_path):
    r = rlvr('run', '--dry_run', '--set', 'train.rewards=[rule_binary]', 'models.judges=[]')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert '# stages: train/rule_binary, evaluate, report' in lines
    plan = lines[lines.index('# stages: train/rule_binary, evaluate, report') + 1:]   # then the resource plan of those stages
    assert plan[0].startswith('# resource plan:') and [l.split(':')[0] for l in plan[1:]] == ['# train/rule_binary', '# evaluate']
    r = rlvr('config', '--preset', 'paper')
    assert r.returncode == 0 and 'Qwen/Qwen2.5-72B-Instruct' in r.stdout and 'learning_rate: 5.0e-07' in r.stdout

def test_config_explain_and_light_start_up():
    "`rlvr config --explain` gives every key's help and is still a config file; the CLI starts without torch."
    import yaml
    from rlvr_nb.config import RunConfig
    r = rlvr('config', '--explain', '--preset', 'paper')
    assert r.returncode == 0, r.stderr
    assert '  # passes over the verdict rows (TRL); toy: as `TOY_DISTILL`; paper: 1\n  num_train_epochs: 1\n' in r.stdout
    assert RunConfig.from_dict(yaml.safe_load(r.stdout)) == RunConfig.paper()
    assert '--explain' in rlvr('config', '--help').stdout
    r = subprocess.run([sys.executable, '-c', 'import sys, rlvr_nb.cli; print([m for m in ("torch", "transformers", "pandas") if m in sys.modules])'],
                       capture_output=True, text=True, env=ENV)
    assert r.stdout.strip() == '[]', r.stdout + r.stderr

def test_repeated_set_flags_all_apply():
    "`--set a=1 --set b=2` applies both (argparse's default would silently keep only the last flag's values)."
    r = rlvr('config', '--set', 'seed=3', '--set', 'models.teacher=toy-oracle', 'train.max_steps=5')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert 'seed: 3' in lines and '  teacher: toy-oracle' in lines and '  max_steps: 5' in lines, r.stdout


def test_small_run_report_and_failing_stage(tmp_path):
    from test_pipeline import tiny_policy
    out = tmp_path / 'run'
    sets = [f'models.policy={tiny_policy(tmp_path / "tiny_policy")}', 'train.rewards=[rule_binary]', 'models.judges=[]', 'data.n_train=8', 'data.n_test=12', 'train.max_steps=1',
            'train.per_device_train_batch_size=8', 'train.max_completion_length=8', 'evaluate.max_new_tokens=8', 'train.monitor_grader=false']
    r = rlvr('run', '--quiet', '--output_dir', str(out), '--set', *sets)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / 'results.json').read_text())
    assert [p['name'] for p in res['policies']] == ['rule_binary'] and 0 <= res['policies'][0]['accuracy'] <= 100
    (out / 'report.md').unlink()
    r = rlvr('report', str(out))
    assert r.returncode == 0 and (out / 'report.md').is_file() and 'rule_binary' in (out / 'report.md').read_text()
    assert rlvr('report', str(tmp_path / 'nowhere')).returncode == 2
    # a stage that fails at run time: exit 1, the stage named, earlier stages kept
    junk = tmp_path / 'junk'; junk.mkdir()
    done = (out / 'train' / 'rule_binary' / 'DONE.json').read_text()
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout.strip()
    (out / f'.tmp-train-rule_binary-{dead}').mkdir(); (out / f'.tmp-train-rule_binary-{dead}' / 'model.bin').write_bytes(b'0' * 1000)  # as a SIGKILL leaves it
    r = rlvr('run', '--quiet', '--output_dir', str(out), '--set', *sets, f'models.grader={junk}')
    assert r.returncode == 1 and "stage 'evaluate' failed" in r.stderr, r.stderr[-2000:]
    assert (out / 'train' / 'rule_binary' / 'DONE.json').read_text() == done
    assert not (out / f'.tmp-train-rule_binary-{dead}').exists()              # a dead process's temporary folder: removed by the next run

def test_main_in_process(capsys):
    assert main(['run', '--set', 'train.estimater=rloo']) == 2
    assert "did you mean 'estimator'" in capsys.readouterr().err


# ---- configs refused before any work: every check names its key, exit status 2, no output folder -------------------

def _main(args, env=None):
    "`rlvr_nb.cli.main(args)` in this process: (exit status, stderr)."
    import contextlib, io
    err = io.StringIO()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main(list(args))
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    return rc, err.getvalue()

def _data_files(tmp_path, n_train=40, n_test=5):
    "A local train and test file of toy-world questions, and a model directory to name as the policy."
    from rlvr_nb.toy import make_toy_dataset
    d = tmp_path / 'data'; d.mkdir(exist_ok=True)
    for name, n, split in (('train', n_train, 'train'), ('test', n_test, 'test')):
        rows = make_toy_dataset(n, seed=0, split=split).to_list()
        (d / f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    (d / 'policy').mkdir(exist_ok=True)
    return d / 'train.jsonl', d / 'test.jsonl', d / 'policy'

REFUSED = [   # (--set overrides, text the message must hold: the key)
    (['train.learning_rate=-1e-5'], "'train.learning_rate' must be >= 0, not -1e-05"),
    (['explore.learning_rate=.nan'], "'explore.learning_rate' must be >= 0, not nan"),
    (['distill.learning_rate=.inf'], "'distill.learning_rate' must be >= 0, not inf"),
    (['train.temperature=0'], "'train.temperature' must be positive, not 0"),
    (['explore.temperature=-0.5'], "'explore.temperature' must be positive"),
    (['train.per_device_train_batch_size=-8'], "'train.per_device_train_batch_size' must be positive, not -8"),
    (['explore.per_device_train_batch_size=-32'], "'explore.per_device_train_batch_size' must be positive"),
    (['train.per_device_train_batch_size=6'], "'train.per_device_train_batch_size' (6) x WORLD_SIZE (1) = 6 samples per generation, which is not a multiple of 'train.num_generations' (4)"),
    (['explore.num_generations=3'], "not a multiple of 'explore.num_generations' (3)"),
    (['train.rl_args={generation_batch_size: 36}'], "'train.rl_args.generation_batch_size' (36) must be a multiple of 'train.per_device_train_batch_size' (32)"),
    (['train.max_completion_length=0'], "'train.max_completion_length' must be positive, not 0"),
    (['explore.max_completion_length=-1'], "'explore.max_completion_length' must be positive"),
    (['agreement.bootstrap=-1'], "'agreement.bootstrap' must be >= 0, not -1"),
    (['seed=-1'], "'seed' must be in [0, 2**32)"),
    (['distill.max_length=0'], "'distill.max_length' must be positive, not 0"),
    (['train.beta=-0.01'], "'train.beta' must be >= 0, not -0.01"),
    (['distill.num_train_epochs=0'], "'distill.num_train_epochs' must be positive, not 0"),
    (['distill.augment_rate=1'], "'distill.augment_rate' must be in [0, 1), not 1"),
    (['distill.augment_rate=-0.1'], "'distill.augment_rate' must be in [0, 1)"),
    (['train.rewards=[]'], "'train.rewards' is empty"),
    (['data.domains=[math, physics]'], "'data.domains' has unknown domains ['physics']"),
    (['data.domains=[]'], "'data.domains' is empty"),
    (['train.rl_args={generation_batch_sise: 64}'], "unknown key 'train.rl_args.generation_batch_sise'"),
    (['explore.rl_args={learning_rate: 0.1}'], "'explore.rl_args.learning_rate' is set by 'explore.learning_rate'"),
    (['distill.sft_args={micro_batch_size: 8, warmup_step: 0.1}'], "unknown key 'distill.sft_args.warmup_step'"),
    (['distill.sft_args={seed: 3}'], "'distill.sft_args.seed' is set by 'seed'"),
]

@pytest.mark.parametrize('sets,msg', REFUSED, ids=[s[0].split('=')[0] for s, _ in REFUSED])
def test_bad_values_refused_before_any_work(tmp_path, sets, msg):
    out = tmp_path / 'out'
    rc, err = _main(['run', '--output_dir', str(out), '--stage', 'report', '--set', *sets])   # (--stage report: a config that passed would stop at once)
    assert rc == 2 and msg in err, err
    assert not out.exists()

def test_world_size_decides_the_generation_batch(tmp_path):
    out = tmp_path / 'out'
    sets = ['train.per_device_train_batch_size=2', 'models.judges=[]', 'train.rewards=[rule_binary]']
    rc, err = _main(['run', '--output_dir', str(out), '--stage', 'report', '--set', *sets])
    assert rc == 2 and "x WORLD_SIZE (1) = 2 samples per generation" in err, err
    rc, err = _main(['run', '--output_dir', str(out), '--dry_run', '--set', *sets], env={'WORLD_SIZE': '2'})   # 2 x 2 processes = one group of 4
    assert rc == 0, err
    rc, err = _main(['run', '--output_dir', str(out), '--dry_run', '--set', *sets], env={'WORLD_SIZE': 'two'})
    assert rc == 2 and "WORLD_SIZE='two'" in err
    assert not out.exists()

def test_local_data_files_checked_before_any_work(tmp_path):
    train, test, policy = _data_files(tmp_path, n_test=5)
    out = tmp_path / 'out'
    base = ['run', '--output_dir', str(out), '--stage', 'report', '--set', f'models.policy={policy}', f'data.train={train}', f'data.test={test}']
    rc, err = _main(base + ['data.n_test=12'])
    assert rc == 2 and f"'data.n_test' is 12, but the file of 'data.test' ({test}) has 5 rows" in err, err
    rc, err = _main(base + ['data.n_test=5', 'data.n_explore=40', 'data.n_train=8'])
    assert rc == 2 and f"the file of 'data.train' ({train}) has 40 rows: none left for STEP 3" in err, err
    rc, err = _main(base + ['data.n_test=5', 'data.domains=[math]'])
    assert rc == 2 and "'data.domains' selects toy-world domains, but 'data.train' is not 'toy'" in err
    rc, err = _main(['run', '--output_dir', str(out), '--stage', 'report', '--set', f'data.test={test}'])
    assert rc == 2 and "both are the toy world ('toy') or neither is" in err
    assert not out.exists()

def test_many_bad_values_in_one_config_file_all_named_by_the_real_cli(tmp_path):
    "The console script on a config file with a dozen problems: exit 2, each problem named, no output folder, quickly (no torch import)."
    bad = tmp_path / 'bad.yaml'
    bad.write_text('train: {learning_rate: -1e-5, temperature: 0, per_device_train_batch_size: 6, beta: -1, rewards: []}\n'
                   'explore: {learning_rate: .nan, max_completion_length: 0, rl_args: {generation_batch_sise: 8}}\n'
                   'distill: {max_length: 0, num_train_epochs: 0, augment_rate: 1.5, sft_args: {warmup_step: 0.1}}\n'
                   'agreement: {bootstrap: -1}\nseed: -3\ndata: {domains: [physics]}\n')
    out = tmp_path / 'out'
    import time
    t0 = time.perf_counter()
    r = rlvr('run', '--config', str(bad), '--output_dir', str(out))
    took = time.perf_counter() - t0
    assert r.returncode == 2, r.stderr
    for key in ('train.learning_rate', 'train.temperature', "'train.num_generations' (4)", 'train.beta', "'train.rewards' is empty",
                'explore.learning_rate', 'explore.max_completion_length', 'explore.rl_args.generation_batch_sise', 'distill.max_length',
                'distill.num_train_epochs', 'distill.augment_rate', 'distill.sft_args.warmup_step', 'agreement.bootstrap', "'seed'", 'data.domains'):
        assert key in r.stderr, (key, r.stderr)
    assert 'Traceback' not in r.stderr and not out.exists()
    assert took < 10, took                    # refused by the torch-free config module (a few tenths of a second on an idle machine)

# numbers: every invalid value refused with status 2 and no folder; every valid one accepted
from hypothesis import HealthCheck, given, settings, strategies as st

_NUMERIC = {   # key: (int only?, valid?) for the toy preset (num_generations 4, per-device batches 32, WORLD_SIZE 1)
    'train.learning_rate': (False, lambda v: v >= 0), 'explore.learning_rate': (False, lambda v: v >= 0), 'distill.learning_rate': (False, lambda v: v >= 0),
    'train.temperature': (False, lambda v: v > 0), 'explore.temperature': (False, lambda v: v > 0), 'evaluate.temperature': (False, lambda v: v >= 0),
    'train.beta': (False, lambda v: v >= 0), 'distill.num_train_epochs': (False, lambda v: v > 0), 'train.num_train_epochs': (False, lambda v: v > 0),
    'distill.augment_rate': (False, lambda v: 0 <= v < 1), 'distill.heldout': (False, lambda v: 0 <= v < 1),
    'train.per_device_train_batch_size': (True, lambda v: v > 0 and v % 4 == 0), 'explore.per_device_train_batch_size': (True, lambda v: v > 0 and v % 4 == 0),
    'train.num_generations': (True, lambda v: v >= 2 and 32 % v == 0), 'explore.num_generations': (True, lambda v: v >= 2 and 32 % v == 0),
    'train.max_completion_length': (True, lambda v: v > 0), 'explore.max_completion_length': (True, lambda v: v > 0),
    'distill.max_length': (True, lambda v: v > 0), 'distill.batch_size': (True, lambda v: v > 0), 'agreement.bootstrap': (True, lambda v: v >= 0),
    'seed': (True, lambda v: 0 <= v < 2**32),
}

def _yaml_number(v) -> str:
    import math
    if isinstance(v, float) and math.isnan(v): return '.nan'
    if isinstance(v, float) and math.isinf(v): return '.inf' if v > 0 else '-.inf'
    return repr(v)                             # exponents without a dot (1e-05) included: they are floats

@st.composite
def _numeric_setting(draw):
    key = draw(st.sampled_from(sorted(_NUMERIC)))
    ints = st.one_of(st.integers(-3, 70), st.integers(-2**40, 2**40))
    value = draw(ints if _NUMERIC[key][0] else st.one_of(ints, st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2)))
    return key, value

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_numeric_setting())
def test_numeric_values_refused_exactly_when_invalid(tmp_path, setting):
    import math
    key, value = setting
    valid = (not isinstance(value, float) or math.isfinite(value)) and _NUMERIC[key][1](value)
    out = tmp_path / 'never'
    if valid:   # accepted: the plan is printed (a dry run writes nothing)
        rc, err = _main(['run', '--dry_run', '--output_dir', str(out), '--set', f'{key}={_yaml_number(value)}'])
        assert rc == 0, (key, value, err)
    else:       # refused before any work (--stage report: a config that passed would stop at once, and write a folder)
        rc, err = _main(['run', '--stage', 'report', '--output_dir', str(out), '--set', f'{key}={_yaml_number(value)}'])
        assert rc == 2 and f"'{key}'" in err, (key, value, err)
    assert not out.exists()

# ---- config files and output directories: clean messages, status 2 ---------------------------------------------------

def test_bad_yaml_and_output_dirs_give_clean_messages(tmp_path):
    (tmp_path / 'bad.yaml').write_text('train:\n  rewards: [rule_binary\n  max_steps: 3\n')
    (tmp_path / 'list.yaml').write_text('- preset: toy\n')
    (tmp_path / 'file').write_text('not a directory')
    (tmp_path / 'latin1.yaml').write_bytes(b'seed: 1 # caf\xe9\n')
    cases = [(['run', '--config', str(tmp_path / 'bad.yaml')], 'bad.yaml: not valid YAML'),
             (['config', '--config', str(tmp_path / 'bad.yaml')], 'not valid YAML'),
             (['run', '--config', str(tmp_path / 'list.yaml'), '--preset', 'paper'], 'a run config must be a mapping, not list'),
             (['run', '--config', str(tmp_path / 'latin1.yaml')], 'cannot read the config file'),
             (['run', '--config', str(tmp_path)], 'config file not found'),
             (['run', '--output_dir', str(tmp_path / 'file')], "is a file, not a directory"),
             (['run', '--output_dir', str(tmp_path / 'file' / 'sub' / 'run')], f"lies under {tmp_path / 'file'}, which is a file")]
    for args, msg in cases:
        r = rlvr(*args)
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr[-2000:])
    assert (tmp_path / 'file').read_text() == 'not a directory'

def test_exponent_floats_are_floats():
    r = rlvr('config', '--set', 'train.learning_rate=5e-7', 'distill.learning_rate=1E-5')
    assert r.returncode == 0, r.stderr
    assert '  learning_rate: 5.0e-07' in r.stdout and '  learning_rate: 1.0e-05' in r.stdout

# ---- the run lock, through the CLI ----------------------------------------------------------------------------------

def test_a_locked_output_dir_refuses_run_and_report(tmp_path):
    import signal
    out = tmp_path / 'run'; out.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', f"import time\nfrom pathlib import Path\nfrom rlvr_nb.runner import run_lock\n"
                               f"with run_lock(Path({str(out)!r})): print('locked', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        rc, err = _main(['run', '--quiet', '--stage', 'report', '--output_dir', str(out)])   # (--stage report: without the lock it would stop at once)
        assert rc == 2 and f'another rlvr process (pid {holder.pid}) is running in {out}' in err, err
        assert sorted(p.name for p in out.iterdir()) == ['.lock']          # nothing written: no config.yaml, no stage folder
        rc, err = _main(['report', str(out)])
        assert rc == 2 and f'pid {holder.pid}' in err, err
    finally:
        holder.send_signal(signal.SIGKILL); holder.wait()
    rc, err = _main(['report', str(out)])                                  # the holder was killed: the lock is free (nothing to report yet)
    assert rc == 2 and 'another rlvr process' not in err, err

def test_checks_stay_torch_free():
    "The checks read `RLVRConfig`, `SFTConfig`, `SFTTrainer` and `train_verifier` from their sources: no model library is imported to refuse a config."
    code = ("import sys; from rlvr_nb.config import RunConfig, check_config, rl_arg_names, sft_arg_names\n"
            "check_config(RunConfig.toy(**{'train.rl_args': {'generation_batch_size': 64}, 'data.domains': ['math']}))\n"
            "check_config(RunConfig.paper(), cuda=True)\n"
            "assert len(rl_arg_names()) > 100 and 'micro_batch_size' in sft_arg_names()\n"
            "print(sorted(m for m in ('torch', 'trl', 'transformers', 'datasets', 'pyarrow') if m in sys.modules))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and r.stdout.strip() == '[]', r.stdout + r.stderr[-2000:]

def test_static_reading_matches_the_imported_classes():
    "What the checks read from the sources is what the classes and functions take when imported."
    import inspect
    from dataclasses import fields
    from trl import SFTConfig, SFTTrainer
    from rlvr_nb.config import rl_arg_names, sft_arg_names, toy_domains
    from rlvr_nb.distill import train_verifier
    from rlvr_nb.rl import RLVRConfig
    from rlvr_nb.toy import TOY_DOMAINS
    named = lambda f: {n for n, p in inspect.signature(f).parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {'self'}
    assert rl_arg_names() == {f.name for f in fields(RLVRConfig) if f.init}
    assert sft_arg_names() == {f.name for f in fields(SFTConfig) if f.init} | named(train_verifier) | named(SFTTrainer.__init__)
    assert toy_domains() == tuple(TOY_DOMAINS)

def test_generation_batch_rule_agrees_with_trl(tmp_path):
    "The check's verdict on per-device batch x num_generations x rl_args is TRL's (`GRPOConfig.__post_init__`), for both presets' bases."
    import itertools, warnings
    from rlvr_nb.config import RunConfig, _generation_batch
    from rlvr_nb.rl import RLVRConfig
    extras = ({}, {'generation_batch_size': 12}, {'steps_per_generation': 2}, {'gradient_accumulation_steps': 3},
              {'generation_batch_size': 12, 'steps_per_generation': 2}, {'generation_batch_size': None, 'steps_per_generation': 3})
    disagree = []
    for preset, pd, ng, extra in itertools.product(('toy', 'paper'), range(1, 9), (2, 3, 4), extras):
        cfg = getattr(RunConfig, preset)(**{'train.per_device_train_batch_size': pd, 'train.num_generations': ng, 'train.rl_args': extra})
        errs = []; _generation_batch(cfg, 'train', 1, errs)
        base = RLVRConfig.paper if preset == 'paper' else RLVRConfig.toy
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                base(output_dir=str(tmp_path), per_device_train_batch_size=pd, num_generations=ng, **extra, **({'bf16': False} if preset == 'paper' else {}))
            trl_ok = True
        except ValueError: trl_ok = False
        if trl_ok == bool(errs): disagree.append((preset, pd, ng, extra, trl_ok, errs))
    assert not disagree, disagree[:5]


def test_python_dash_m_is_the_same_command(tmp_path):
    "`python -m rlvr_nb.cli` (what torchrun and `accelerate launch -m` run) parses and exits like `rlvr`."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    ok = subprocess.run([sys.executable, '-m', 'rlvr_nb.cli', 'config', '--preset', 'paper'], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and 'preset: paper' in ok.stdout, ok.stderr
    bad = subprocess.run([sys.executable, '-m', 'rlvr_nb.cli', 'run', '--set', 'train.estimater=rloo', '--output_dir', str(tmp_path / 'r')],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "did you mean 'estimator'?" in bad.stderr and not (tmp_path / 'r').exists()
