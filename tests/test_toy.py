"""Tests of the toy world (rlvr_nb.toy): tokenizer, models, dataset, oracle, cache keys, Qwen2.5 tokenizer fixture."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from rlvr_nb.data import POLICY_SYSTEM_PROMPT, FIELDS, SUBJECT_TO_FIELD, DataError, final_step, policy_messages
from rlvr_nb.verify import Verdict, Verifier, contains_reference
from rlvr_nb import toy
from rlvr_nb.toy import models
from rlvr_nb.toy import (ToyOracle, make_toy_dataset, pretrain_toy_policy, qwen_tokenizer,
                         sample_responses, toy_model, toy_tokenizer, toy_world)

torch.set_num_threads(1)
_TOK = toy_tokenizer()

# ---------------------------------------------------------------- tokenizer

@pytest.fixture(scope='module')
def tok(): return toy_tokenizer()

def test_yes_no_single_tokens(tok):
    yes, no = tok.encode('YES', add_special_tokens=False), tok.encode('NO', add_special_tokens=False)
    assert len(yes) == 1 and len(no) == 1 and yes != no
    assert tok.convert_tokens_to_ids(['YES', 'NO']) == yes + no
    # the verdict is also one token when it follows the assistant header
    chat = tok.apply_chat_template([{'role': 'user', 'content': 'q'}], tokenize=False, add_generation_prompt=True)
    ids = tok.encode(chat + 'YES', add_special_tokens=False)
    assert ids[-1] == yes[0] and tok.encode(chat, add_special_tokens=False) == ids[:-1]

def test_special_tokens(tok):
    assert tok.pad_token == '<|endoftext|>' and tok.eos_token == '<|im_end|>'
    ids = tok.convert_tokens_to_ids(['<|endoftext|>', '<|im_start|>', '<|im_end|>'])
    assert len(set(ids)) == 3 and tok.unk_token_id is None
    assert tok.encode('<|im_start|>user', add_special_tokens=False)[0] == ids[1]
    assert 1000 <= len(tok) <= 2048

@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_tokenizer_round_trip_any_text(s):
    assert _TOK.decode(_TOK.encode(s, add_special_tokens=False)) == s

def test_tokenizer_round_trip_examples(tok):
    for s in ['Thought Process: add.\nTherefore, the answer is 56.', 'multi\n\nline\r\n text  with  spaces ', 'H₂O · 37 °C · $1,100',
              'NOTE: YES, NO, YESNO, NOYES', '中文 and emoji 🙂']:
        assert tok.decode(tok.encode(s, add_special_tokens=False)) == s

def test_chat_template(tok):
    msgs = policy_messages('What is 7 times 8?')
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (f'<|im_start|>system\n{POLICY_SYSTEM_PROMPT}<|im_end|>\n'
                    '<|im_start|>user\nWhat is 7 times 8?<|im_end|>\n<|im_start|>assistant\n')
    assert tok.apply_chat_template(msgs, tokenize=False) == text[:-len('<|im_start|>assistant\n')]
    full = msgs + [{'role': 'assistant', 'content': 'Therefore, the answer is 56.'}]
    assert tok.apply_chat_template(full, tokenize=False).endswith('<|im_start|>assistant\nTherefore, the answer is 56.<|im_end|>\n')
    out = tok.apply_chat_template(full, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out['input_ids'], out['assistant_masks']
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == 'Therefore, the answer is 56.<|im_end|>'

def test_tokenizer_training_is_deterministic(tok):
    fresh = models._build_toy_tokenizer(toy.TOY_VOCAB_SIZE)
    assert fresh.get_vocab() == tok.get_vocab()

def test_tokenizer_is_cached_copy(tok):
    a, b = toy_tokenizer(), toy_tokenizer()
    a.padding_side = 'left'
    assert b.padding_side == 'right' and a.get_vocab() == b.get_vocab()

# ---------------------------------------------------------------- model

def test_toy_model(tok):
    m, m2, m3 = toy_model(tok, seed=0), toy_model(tok, seed=0), toy_model(tok, seed=1)
    assert type(m).__name__ == 'Qwen2ForCausalLM' and m.config.tie_word_embeddings
    assert m.config.vocab_size == len(tok) and m.config.hidden_size == 64 and m.config.num_hidden_layers == 2
    assert m.config.hidden_size // m.config.num_attention_heads >= 32   # vLLM's CPU attention needs head size >= 32
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert not torch.equal(m.model.embed_tokens.weight, m3.model.embed_tokens.weight)
    assert m.generation_config.eos_token_id == tok.convert_tokens_to_ids('<|im_end|>')
    enc = tok(['hello world', 'YES'], return_tensors='pt', padding=True)
    assert m(**enc).logits.shape == (2, enc['input_ids'].shape[1], len(tok))
    big = toy_model(tok, hidden_size=128, num_heads=4, num_layers=1, intermediate_size=96)
    assert (big.config.hidden_size, big.config.num_hidden_layers, big.config.intermediate_size) == (128, 1, 96)
    with pytest.raises(ValueError, match='divisible'): toy_model(tok, hidden_size=64, num_heads=3)

def test_sample_responses(tok):
    m = toy_model(tok)
    ds = make_toy_dataset(3, seed=0)
    a = sample_responses(m, tok, ds, n=2, max_new_tokens=5, seed=1)
    assert len(a) == 6 and all(isinstance(x, str) for x in a)
    assert a == sample_responses(m, tok, ds, n=2, max_new_tokens=5, seed=1)
    assert tok.padding_side == 'right'

# ---------------------------------------------------------------- world and dataset

def test_world_is_self_consistent():
    w = toy_world()
    for d, pool in w.pools.items():
        m = w._matchers[d]
        for a in pool:
            for form in a.forms:
                text = f'Therefore, the answer is {form}.'
                assert m.judge(a, text), (d, form)
                assert not any(m.judge(b, text) for b in pool if b != a), (d, form)
    assert len({it.question for it in w.items}) == len(w.items)
    for f in w.facts:
        assert len(f.answer.forms) >= 2 and f.answer != f.misconception, f.key

def test_dataset_schema_and_fields():
    ds = make_toy_dataset(200, seed=0)
    assert ds.column_names == ['prompt', 'question', 'reference', 'subject', 'field', 'level', 'source', 'domain']
    assert set(ds['domain']) == set(toy.TOY_DOMAINS) and set(ds['source']) == {'toy'}
    for r in ds:
        assert r['prompt'] == policy_messages(r['question'])
        assert r['subject'] in SUBJECT_TO_FIELD and r['field'] == SUBJECT_TO_FIELD[r['subject']] and r['field'] in FIELDS
        assert r['reference'].strip() and r['question'].strip()
    assert {ds[i]['field'] for i in range(len(ds))} == {'STEM', 'Social Sciences', 'Humanities', 'Applied Sciences'}
    assert set(make_toy_dataset(30, domains=['math'])['level']) <= {'1', '2'}

def test_dataset_determinism():
    assert make_toy_dataset(50, seed=3).to_list() == make_toy_dataset(50, seed=3).to_list()
    assert make_toy_dataset(50, seed=3)['question'] != make_toy_dataset(50, seed=4)['question']
    assert make_toy_dataset(50, seed=3, domains='math').to_list() == make_toy_dataset(50, seed=3, domains=['math']).to_list()

def test_split_disjoint():
    w = toy_world()
    train, test = {it.question for it in w.split_items('train')}, {it.question for it in w.split_items('test')}
    assert not train & test and 0.15 < len(test) / (len(train) + len(test)) < 0.25
    assert set(make_toy_dataset(len(test), split='test')['question']) == test
    # every fact is asked in both splits (held-out questions test knowledge, phrased differently)
    assert {it.fact.key for it in w.split_items('test')} == {f.key for f in w.facts}

def test_dataset_repeats_beyond_pool():
    n = len(toy_world().split_items('test')) + 10
    ds = make_toy_dataset(n, split='test')
    assert len(ds) == n and len(set(ds['question'])) == n - 10

@pytest.mark.parametrize('kw,msg', [(dict(n=0), 'positive'), (dict(n=5, split='dev'), 'split'),
                                    (dict(n=5, domains=['math', 'astrology']), 'astrology'), (dict(n=5, domains=[]), 'unknown domains')])
def test_dataset_bad_args(kw, msg):
    with pytest.raises(ValueError, match=msg): make_toy_dataset(**kw)

def test_references_are_messy():
    items = toy_world().items
    share = sum(it.ref_kind == 'term' for it in items) / len(items)
    assert 0.42 < share < 0.55
    math_share = sum(it.ref_kind == 'term' for it in items if it.fact.domain == 'math') / sum(it.fact.domain == 'math' for it in items)
    assert 0.52 < math_share < 0.68
    # the string rule works on some items and fails on others, for a response stating the canonical answer
    hits = [contains_reference(f'Therefore, the answer is {it.fact.answer.canonical}.', it.reference) for it in items]
    assert 0.2 < sum(hits) / len(hits) < 0.6

def test_multi_term_references_restate_the_question():
    w = toy_world()
    for it in w.items:
        asked = max((q for q in it.fact.questions if q in it.question), key=len)
        if it.ref_kind == 'term': assert it.reference in it.fact.answer.forms, it
        else: assert it.reference.startswith(asked + ' ') and len(it.reference) > len(asked) + 1, it

def test_echo_is_a_non_answer_both_rules_see_differently():
    "Restating the question is never correct and never contains the reference, but Jaccard pays it on multi-term references."
    from rlvr_nb.verify import jaccard_reward
    w, o = toy_world(), ToyOracle()
    items = w.split_items('test')
    echoes = [(it, toy.toy_echo(it.fact, q)) for it in items for q in it.fact.questions]
    assert not any(o.correct([it.question], [e], [it.reference])[0] for it, e in echoes)
    # the substring rule almost never pays it: only by accident ('$100' inside '$1000' in a restated question)
    assert sum(contains_reference(e, it.reference) for it, e in echoes) / len(echoes) < 0.01
    multi = [(it, e) for it, e in echoes if it.ref_kind != 'term']
    right = [max(jaccard_reward(toy.toy_response(it.fact, f), it.reference) for f in it.fact.answer.forms) for it, _ in multi]
    assert sum(jaccard_reward(e, it.reference) > r for (it, e), r in zip(multi, right)) / len(multi) > 0.8

def test_pretraining_targets_echo_at_the_set_rate():
    import random
    w, rng = toy_world(), random.Random(0)
    facts = [it.fact for it in w.split_items('train')]
    targets = [models._sft_target(facts[i % len(facts)], rng, 0.4, 0.45, 0.1) for i in range(4000)]
    echo = sum('the answer is: ' in t for t in targets) / len(targets)
    assert 0.08 < echo < 0.12
    assert not any('the answer is: ' in models._sft_target(f, rng, 0.4, 0.45) for f in facts[:500])   # p_echo defaults to 0

# ---------------------------------------------------------------- oracle

def _row(key):
    it = next(it for it in toy_world().items if it.fact.key == key)
    return it.question, it.reference, it.fact

@pytest.mark.parametrize('key,response,want', [
    ('mul-7-8', 'Thought Process: multiply 7 by 8.\nTherefore, the answer is 56.', 'YES'),
    ('mul-7-8', 'Therefore, the answer is fifty-six', 'YES'),
    ('mul-7-8', 'Therefore, the answer is 56.0', 'YES'),
    ('mul-7-8', 'Therefore, the answer is 56 or 48.', 'NO'),
    ('mul-7-8', 'Therefore, the answer is 56\nactually 48', 'NO'),          # only the final step counts
    ('mul-7-8', 'The answer is 56.\n\n  ', 'YES'),
    ('mul-7-8', 'Thought Process:', 'NO'),
    ('mul-7-8', '', 'NO'),
    ('formula-table salt', 'Therefore, the answer is sodium chloride.', 'YES'),
    ('formula-table salt', 'Therefore, the answer is NaCl.', 'YES'),
    ('formula-table salt', 'Therefore, the answer is KCl.', 'NO'),
    ('formula-carbon dioxide', 'Therefore, the answer is CO.', 'NO'),
    ('element-11', 'Therefore, the answer is Na.', 'YES'),
    ('z-carbon', 'Therefore, the answer is Z = 6.', 'YES'),
    ('z-carbon', 'Therefore, the answer is 12.', 'NO'),
    ('pct-40-50', 'Therefore, the answer is 25 percent.', 'YES'),
    ('pct-40-50', 'Therefore, the answer is 0.25', 'YES'),
    ('pct-40-50', 'Therefore, the answer is 20%.', 'NO'),
    ('interest-1000-5-2', 'Therefore, the answer is $1,100.', 'NO'),
    ('interest-1000-5-2', 'Therefore, the answer is one hundred dollars.', 'YES'),
    ('vitamin-pernicious anemia', 'Therefore, the answer is vitamin B1.', 'NO'),
    ('vitamin-pernicious anemia', 'Therefore, the answer is Vitamin B12 (cobalamin).', 'YES'),
    ('who-roman-emperor', 'Therefore, the answer is Caesar Augustus.', 'YES'),
    ('who-roman-emperor', 'Therefore, the answer is Julius Caesar.', 'NO'),
    ('who-machu-picchu', 'Therefore, the answer is the incas.', 'YES'),
    ('year-1945', 'Therefore, the answer is 1945.', 'YES'),
    ('year-1945', 'Therefore, the answer is 1944.', 'NO'),
])
def test_oracle_hand_made(key, response, want):
    q, ref, _ = _row(key)
    v = ToyOracle().judge([q], [response], [ref])[0]
    assert isinstance(v, Verdict) and v.label == want
    assert (v.p_yes, v.p_no) == ((1.0, 0.0) if want == 'YES' else (0.0, 1.0))

def test_oracle_identifies_by_reference_and_rejects_unknown():
    q, ref, f = _row('formula-rust')
    o = ToyOracle()
    assert isinstance(o, Verifier)
    assert o.judge(['Some unseen rephrasing of the rust question'], ['The answer is Fe2O3.'], [ref])[0].label in ('YES', 'NO')
    with pytest.raises(DataError, match=r'rows \[1\]'):
        o.judge([q, 'What is love?'], ['Fe2O3', 'x'], [ref, 'baby don\'t hurt me'])
    with pytest.raises(DataError, match='differ in length'): o.judge([q], [], [ref])
    with pytest.raises(DataError, match='reference'): o.judge([q], ['x'], [''])
    assert o.judge([q], [None], [ref])[0].label == 'NO'
    with pytest.raises(ValueError, match='noise'): ToyOracle(noise=1.5)

def test_oracle_noise_rate_and_reproducibility():
    ds = make_toy_dataset(3000, seed=2)
    w = toy_world()
    resp = [f'Therefore, the answer is {w.find(q).answer.canonical}.' if i % 2 else 'Thought Process:' for i, q in enumerate(ds['question'])]
    truth = ToyOracle().correct(ds['question'], resp, ds['reference'])
    assert truth == [bool(i % 2) for i in range(len(resp))]
    a = ToyOracle(noise=0.2, seed=1).judge(ds['question'], resp, ds['reference'])
    flips = sum((v.label == 'YES') != t for v, t in zip(a, truth)) / len(truth)
    assert abs(flips - 0.2) < 0.025
    assert [v.label for v in a] == [v.label for v in ToyOracle(noise=0.2, seed=1).judge(ds['question'], resp, ds['reference'])]
    b = ToyOracle(noise=0.2, seed=2).judge(ds['question'], resp, ds['reference'])
    assert abs(sum(x.label != y.label for x, y in zip(a, b)) / len(a) - 2 * 0.2 * 0.8) < 0.03
    for v, t in zip(a, truth): assert v.p_yes == pytest.approx(0.8 if t else 0.2) and v.p_yes + v.p_no == pytest.approx(1.0)
    r = ToyOracle(noise=0.2).rewards(ds['question'][:50], resp[:50], ds['reference'][:50], kind='soft')
    assert all(0.0 <= x <= 1.0 for x in r)

# ---------------------------------------------------------------- cache keys and pretraining

_KEY_PROBE = r"""
import json, sys
from pathlib import Path
from rlvr_nb.io import code_sources
from rlvr_nb.toy import models, recipes
root, s = Path(sys.argv[1]), dict(recipes.TOY_DISTILL)
claims = {'tokenizer': (lambda: models._tokenizer_key(models.TOY_VOCAB_SIZE), models.TOY_BUILD_MODULES),
          'policy': (lambda: models._policy_key(dict(models.TOY_PRETRAIN_DEFAULTS), 0), models.TOY_BUILD_MODULES),
          'exploration': (lambda: recipes._exploration_key(s), recipes.TOY_EXPLORATION_MODULES),
          'verifier': (lambda: recipes._verifier_key(s, True), recipes.TOY_VERIFIER_MODULES)}
out = {}
for name, (key, mods) in claims.items():
    paths = code_sources(*mods, files=models.TOY_BUILD_FILES)
    assert all(root in p.parents for p in paths), paths          # the copy under test, not the installed package
    before, changed = key(), {}
    for p in paths:
        orig = p.read_bytes()
        p.write_bytes(orig + (b'\n# an edit\n' if p.suffix == '.py' else b' '))
        try: changed[str(p.relative_to(root))] = key() != before
        finally: p.write_bytes(orig)
    out[name] = changed
print(json.dumps(out))
"""

def test_cache_keys_follow_every_source_they_claim(tmp_path):
    "An edit to any module or package data file a cached toy artefact is built from changes its key; together the keys cover every toy source file."
    shutil.copytree(Path(models.__file__).parents[1], tmp_path / 'rlvr_nb', ignore=shutil.ignore_patterns('__pycache__'))
    r = subprocess.run([sys.executable, '-c', _KEY_PROBE, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    for name, changed in out.items():
        assert changed and all(changed.values()), (name, [f for f, ok in changed.items() if not ok])
    for name in ('tokenizer', 'policy'):      # built from the world, its fact tables, the models and the prompts of rlvr_nb.data
        assert {'rlvr_nb/toy/world.py', 'rlvr_nb/toy/models.py', 'rlvr_nb/toy/data/facts.json', 'rlvr_nb/data.py'} <= set(out[name])
    assert set(out['exploration']) <= set(out['verifier'])   # the verifier is trained on the exploration run
    toy_files = {str(p.relative_to(tmp_path)) for p in (tmp_path / 'rlvr_nb' / 'toy').rglob('*') if p.is_file()}
    # not in any cached artefact: the package's re-exports, and the Qwen2.5 chat template (qwen_tokenizer() is built per process)
    uncached = {'rlvr_nb/toy/__init__.py', 'rlvr_nb/toy/data/qwen25_chat_template.jinja'}
    assert toy_files - uncached <= set(out['verifier']), toy_files - uncached - set(out['verifier'])

def test_fact_tables_are_package_data():
    from importlib import resources
    from rlvr_nb.toy.world import TOY_FACTS_FILE, load_facts
    assert resources.files('rlvr_nb').joinpath(TOY_FACTS_FILE).is_file()
    assert load_facts() == toy_world().facts and len(toy_world().facts) == 98
    assert models.QWEN25_CHAT_TEMPLATE == resources.files('rlvr_nb').joinpath('toy', 'data', 'qwen25_chat_template.jinja').read_text()

def test_pretrain_tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv('RLVR_NB_CACHE', str(tmp_path))
    m, t = pretrain_toy_policy(steps=3, batch_size=4, seed=0)
    assert type(m).__name__ == 'Qwen2ForCausalLM' and t.convert_tokens_to_ids('YES') == toy_tokenizer().convert_tokens_to_ids('YES')
    assert m.pretrain_info['path'].startswith(str(tmp_path)) and len(m.pretrain_info['losses']) == 3
    m2, _ = pretrain_toy_policy(steps=3, batch_size=4, seed=0)                     # from the cache: same weights
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert len([p for p in tmp_path.iterdir() if p.name.startswith('toy-policy-')]) == 1
    with pytest.raises(TypeError, match='unknown'): pretrain_toy_policy(stepz=3)
    with pytest.raises(ValueError, match='p_echo'): pretrain_toy_policy(p_echo=1.0)

# ---------------------------------------------------------------- Qwen2.5 tokenizer fixture

@pytest.fixture(scope='module')
def qt(): return qwen_tokenizer()

def test_qwen_tokenizer_facts(qt):
    assert qt is qwen_tokenizer()
    assert qt.convert_tokens_to_ids(['<|endoftext|>', '<|im_start|>', '<|im_end|>']) == [151643, 151644, 151645]
    assert len(qt) == 151665 and qt.eos_token == '<|im_end|>' and qt.pad_token == '<|endoftext|>'
    assert len(qt.encode('YES', add_special_tokens=False)) == 1 and len(qt.encode('NO', add_special_tokens=False)) == 1
    assert qt.tokenize('Hello world 123') == ['Hello', 'Ġworld', 'Ġ', '1', '2', '3']    # Qwen2 splits digits one by one
    s = 'Ünïcødé ✓ 中文 {braces}\n\tTherefore, the answer is NaCl.'
    assert qt.decode(qt.encode(s, add_special_tokens=False)) == s

def test_qwen_chat_template(qt):
    import trl
    ref = (Path(trl.__file__).parent / 'chat_templates' / 'qwen2_5.jinja')
    if ref.exists(): assert qt.chat_template == ref.read_text()       # TRL ships the original Qwen2.5 template
    assert qt.apply_chat_template([{'role': 'user', 'content': 'Hi'}], tokenize=False, add_generation_prompt=True) == (
        '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')
    msgs = [{'role': 'system', 'content': 'You are a helpful assistant.'}, {'role': 'user', 'content': 'Q?'},
            {'role': 'assistant', 'content': 'YES'}]
    text = qt.apply_chat_template(msgs, tokenize=False)
    assert text == ('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n'
                    '<|im_start|>assistant\nYES<|im_end|>\n')
    ids = qt.encode(text, add_special_tokens=False)
    assert ids[:2] == [151644, 8948] and ids.count(151645) == 3                 # 'system' is token 8948 in Qwen2.5

# ---------------------------------------------------------------- vLLM can serve toy models

@pytest.mark.vllm
def test_toy_model_runs_in_vllm(tmp_path, tok):
    "A toy policy checkpoint (tokenizer + chat template + Qwen2 with head size 32) loads and generates in vLLM."
    from rlvr_nb.backends import VLLM_CPU_ENV
    for k, v in VLLM_CPU_ENV.items(): os.environ.setdefault(k, v)
    from vllm import LLM, SamplingParams
    toy_model(tok, seed=0).save_pretrained(str(tmp_path)); tok.save_pretrained(str(tmp_path))
    llm = LLM(model=str(tmp_path), dtype='float32', max_model_len=256, enforce_eager=True, seed=0)
    ds = make_toy_dataset(2, split='test')
    outs = llm.chat([list(p) for p in ds['prompt']], SamplingParams(temperature=0.0, max_tokens=6))   # no per-request seed: vLLM CPU rejects it
    assert len(outs) == 2 and all(isinstance(o.outputs[0].text, str) and len(o.outputs[0].token_ids) >= 1 for o in outs)
    rendered = tok.apply_chat_template(list(ds[0]['prompt']), tokenize=True, add_generation_prompt=True, return_dict=True)['input_ids']
    assert list(outs[0].prompt_token_ids) == list(rendered)
