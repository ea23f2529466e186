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
    assert r.stdout.strip().endswith('# stages: train/rule_binary, evaluate, report')
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
    r = rlvr('run', '--quiet', '--output_dir', str(out), '--set', *sets, f'models.grader={junk}')
    assert r.returncode == 1 and "stage 'evaluate' failed" in r.stderr, r.stderr[-2000:]
    assert (out / 'train' / 'rule_binary' / 'DONE.json').read_text() == done

def test_main_in_process(capsys):
    assert main(['run', '--set', 'train.estimater=rloo']) == 2
    assert "did you mean 'estimator'" in capsys.readouterr().err
