"""Two real processes (torchrun, gloo on CPU) train RLVRTrainer for a few steps: both ranks run, see a world of 2,
compute batch statistics over the gathered batch, and end with identical weights."""
import os, shutil, subprocess, sys

import pytest
import torch

HERE = os.path.dirname(__file__)


@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun not on PATH')
def test_two_processes_identical_weights(tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    cmd = ['torchrun', '--nproc_per_node', '2', '--master_port', str(29500 + os.getpid() % 1000),
           os.path.join(HERE, 'rl_tiny.py'), str(tmp_path), 'reinforce_pp']
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=False) for r in (0, 1)]
    assert [d['rank'] for d in ranks] == [0, 1] and all(d['world'] == 2 for d in ranks)
    for d in ranks:
        assert len(d['seen']) == 3 and all(s['world'] == 2 and s['index'] == d['rank'] for s in d['seen'])
    w0, w1 = ranks[0]['weights'], ranks[1]['weights']
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # the rewards are gathered (8 = 2 processes x 4) and identical on both ranks; each rank trains on its own 4 rows
    for s0, s1 in zip(ranks[0]['seen'], ranks[1]['seen']):
        assert s0['raw'].shape[0] == 8 and torch.equal(s0['raw'], s1['raw'])
        assert s0['advantages'].shape[0] == 4
        # REINFORCE++ whitening is global: the valid-token advantages of both ranks together have mean 0, std 1
        a = torch.cat([s0['advantages'].flatten(), s1['advantages'].flatten()])
        a = a[a != 0]
        if a.numel() > 1: assert abs(a.mean().item()) < 1e-4 and abs(a.std(unbiased=False).item() - 1) < 1e-3
