"""The resource plan (rlvr_nb.plan, `rlvr run --dry_run`): parameter counts and memory arithmetic against hand-computed
values and real models, the paper preset's fit on 8 x 80 GiB, and the dry run's output."""
import os, subprocess, sys

import pytest

from rlvr_nb.config import RunConfig, _apply
from rlvr_nb.models import named_model_available
from rlvr_nb.plan import GiB, Hardware, fit_report, kv_bytes_per_token, model_shape, param_count, resource_plan


def test_hand_computed_counts():
    # Qwen2.5-7B: 28 layers of (q 3584*3584+3584, k and v 3584*512+512, o 3584*3584, MLP 3*3584*18944, 2 norms of 3584),
    # untied 152064 x 3584 embedding and head, one final norm
    layer = (3584 * 3584 + 3584) + 2 * (3584 * 512 + 512) + 3584 * 3584 + 3 * 3584 * 18944 + 2 * 3584
    assert param_count(model_shape('Qwen/Qwen2.5-7B')) == 28 * layer + 2 * 152064 * 3584 + 3584 == 7_615_616_512
    layer = (8192 * 8192 + 8192) + 2 * (8192 * 1024 + 1024) + 8192 * 8192 + 3 * 8192 * 29568 + 2 * 8192
    assert param_count(model_shape('Qwen/Qwen2.5-72B-Instruct')) == 80 * layer + 2 * 152064 * 8192 + 8192
    assert kv_bytes_per_token(model_shape('Qwen/Qwen2.5-72B-Instruct')) == 2 * 80 * 8 * 128 * 2 == 327_680
    tied = {'model_type': 'llama', 'hidden_size': 8, 'intermediate_size': 16, 'num_hidden_layers': 2, 'num_attention_heads': 2,
            'num_key_value_heads': 1, 'vocab_size': 10, 'tie_word_embeddings': True}
    assert param_count(tied) == 2 * (8 * 8 + 2 * 8 * 4 + 8 * 8 + 3 * 8 * 16 + 2 * 8) + 10 * 8 + 8


@pytest.mark.parametrize('name', ['smollm2-135m-instruct', 'qwen2.5-coder-0.5b-instruct'])
def test_counts_equal_real_models(name):
    if not named_model_available(name) or model_shape(name) is None: pytest.skip(f'{name} not installed and converted')
    from rlvr_nb.models import load_model
    m = load_model(name)
    assert param_count(model_shape(name)) == sum(p.numel() for p in m.parameters())


def test_memory_per_stage_by_hand():
    cfg = _apply(RunConfig.paper(), {'backends.judge': 'openai', 'backends.judge_base_url': 'http://j:8/v1', 'train.rewards': ['rule_binary'],
                                     'backends.use_vllm': False})
    P = 7_615_616_512
    for sharding, div_w, div_state in (('ddp', 1, 1), ('zero2', 1, 8), ('fsdp', 8, 8), ('zero3', 8, 8)):
        hw = Hardware(gpus=8, gpu_gib=80, sharding=sharding)
        tr = {p.stage: p for p in resource_plan(cfg, hw)}['train/rule_binary']
        assert tr.memory['weights'] == pytest.approx(P * 2 / div_w / GiB)
        assert tr.memory['gradients'] == pytest.approx(P * 2 / div_state / GiB)
        assert tr.memory['optimizer'] == pytest.approx(P * 4 / div_state / GiB)           # two bf16 moments
        assert tr.memory['reference model'] == pytest.approx(P * 2 / div_w / GiB)          # beta 0.01 > 0
        # generation_batch_size 512 over 8 processes = 64 sequences of 256 + 1024 tokens
        assert tr.memory['KV cache (generation)'] == pytest.approx(57_344 * 64 * 1280 / GiB)
        assert 'judge' not in ' '.join(tr.memory)                                          # no model judge for the rule
    hw = Hardware()
    ex = resource_plan(RunConfig.paper(), hw)[0]
    assert ex.memory['judge Qwen/Qwen2.5-72B-Instruct weights'] == pytest.approx(72_706_203_648 * 2 / GiB)   # in process by default
    assert ex.samples == 40_000 * 4 and ex.tokens == 160_000 * (256 + 1024)


def test_paper_preset_fits_once_sharded_and_served():
    cfg = RunConfig.paper()
    rows = fit_report(resource_plan(cfg), Hardware(), cfg)
    assert not any(r['fits'] for r in rows if r['stage'].startswith(('explore', 'train/')))
    explore = rows[0]
    assert any('serve the judges elsewhere' in c for c in explore['change']) and any('shard' in c for c in explore['change'])
    served = _apply(cfg, {'backends.judge': 'openai', 'backends.judge_base_url': 'http://judge:8000/v1'})
    hw = Hardware(sharding='fsdp')
    assert all(r['fits'] for r in fit_report(resource_plan(served, hw), hw, served))
    with pytest.raises(ValueError, match='sharding'): Hardware(sharding='tp')


def test_dry_run_prints_the_plan_on_a_machine_without_gpus():
    r = subprocess.run([sys.executable, '-m', 'rlvr_nb.cli', 'run', '--preset', 'paper', '--dry_run', '--gpus', '4', '--gpu_gib', '141',
                        '--sharding', 'zero3'], capture_output=True, text=True, timeout=300, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    assert '# resource plan: 4 GPU(s) x 141 GiB, sharding zero3' in r.stdout
    assert '# explore: policy Qwen/Qwen2.5-7B, judge 0 Qwen/Qwen2.5-72B-Instruct; 40,000 prompts, 160,000 samples' in r.stdout
    bad = subprocess.run([sys.executable, '-m', 'rlvr_nb.cli', 'run', '--dry_run', '--sharding', 'tp'], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and 'sharding must be one of' in bad.stderr
