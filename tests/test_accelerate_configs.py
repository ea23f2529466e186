"""The accelerate configs under configs/accelerate: each loads with accelerate's own config loader, and the CPU one
launches two real processes that train a few RL steps and end with identical weights."""
import os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs' / 'accelerate'


@pytest.mark.parametrize('name,kind,extra', [('cpu_ddp', 'MULTI_GPU', {}), ('ddp', 'MULTI_GPU', {}),
                                             ('fsdp', 'FSDP', {'fsdp_version': 2}),
                                             ('deepspeed_zero2', 'DEEPSPEED', {'zero_stage': 2}),
                                             ('deepspeed_zero3', 'DEEPSPEED', {'zero_stage': 3})])
def test_config_loads_with_accelerate(name, kind, extra):
    from accelerate.commands.config.config_args import load_config_from_file
    c = load_config_from_file(str(CONFIGS / f'{name}.yaml'))
    assert c.distributed_type.name == kind and c.num_machines == 1 and c.num_processes >= 2
    section = c.fsdp_config if kind == 'FSDP' else c.deepspeed_config
    for k, v in extra.items(): assert section[k] == v
    assert c.mixed_precision == ('no' if name == 'cpu_ddp' else 'bf16')


def test_every_config_is_listed_in_the_readme():
    readme = (CONFIGS / 'README.md').read_text()
    assert all(f'`{p.name}`' in readme for p in CONFIGS.glob('*.yaml'))


@pytest.mark.skipif(shutil.which('accelerate') is None, reason='accelerate not on PATH')
def test_cpu_config_launches_two_ranks(tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    cmd = ['accelerate', 'launch', '--config_file', str(CONFIGS / 'cpu_ddp.yaml'), '--main_process_port', str(30500 + os.getpid() % 1000),
           str(ROOT / 'tests' / 'rl_tiny.py'), str(tmp_path), 'rloo']
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False) for r in (0, 1)]
    assert [d['rank'] for d in ranks] == [0, 1] and all(d['world'] == 2 for d in ranks)
    w0, w1 = ranks[0]['weights'], ranks[1]['weights']
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
