"""Checks moved out of the toy-world notebooks, where each function keeps one example: the package's exported names
(`01_toy`); the fact table, a bad facts file, the answer reader's cases, the world's self-consistency, the dataset's
seeds, domains, refusals and disjoint splits, the share of bare references and the limit of `number_words`
(`01a_toy_world`); an unknown question and the soft reward of a right answer (`01b_toy_oracle`); the toy tokenizer's
verdict ids, chat template and round trips, seeded models, the Qwen2.5 tokenizer's size, control-token ids and default
system prompt, and the exact shared-prefix loss (`01c_toy_models`); the judge template's segments, the former setting
names and a split that shares no question (`05b_toy_distill`)."""
import importlib, json, tempfile as _tf, warnings
from importlib import resources
from pathlib import Path

import pytest, torch
from fastcore.test import test_close, test_eq, test_fail, test_ne
for _f in (test_close, test_eq, test_fail, test_ne): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.data import POLICY_SYSTEM_PROMPT, policy_messages
from rlvr_nb.toy import ToyOracle, make_toy_dataset, qwen_tokenizer, toy_model, toy_tokenizer, toy_world
from rlvr_nb.toy.models import _batch_loss, _common_prefix
from rlvr_nb.toy.world import TOY_DOMAINS, TOY_FACTS_FILE, load_facts

@pytest.fixture(scope='module')
def tok(): return toy_tokenizer()

# ------------------------------------------------------------------------------------------------ 01_toy
def test_package_exports_names():
    toy = importlib.import_module('rlvr_nb.toy')
    for name in ('toy_tokenizer', 'toy_model', 'make_toy_dataset', 'ToyOracle', 'pretrain_toy_policy', 'qwen_tokenizer', 'toy_world',
                 'cached_artifact', 'TOY_DISTILL', 'toy_student', 'distilled_toy_verifier'):
        assert hasattr(toy, name), name
    test_fail(lambda: toy.no_such_name, contains='no_such_name')

# ------------------------------------------------------------------------------------------------ 01a_toy_world
def test_fact_table_and_a_bad_facts_file():
    facts = load_facts()
    test_eq(len({f.key for f in facts}), len(facts))
    test_eq({len(f.questions) for f in facts}, {5})
    _bad = Path(_tf.mkdtemp()) / 'facts.json'
    _bad.write_text(json.dumps({'facts': [{**json.loads(resources.files('rlvr_nb').joinpath(TOY_FACTS_FILE).read_text())['facts'][0], 'answer': {'forms': []}}]}))
    test_fail(lambda: load_facts(_bad), contains="fact 0 ('mul-3-4') answer: 'forms' must be a non-empty list")

def test_answer_reader_cases():
    w = toy_world()
    test_eq(w.is_correct(w.fact('formula-table salt'), 'Therefore, the answer is sodium chloride.'), True)
    test_eq(w.is_correct(w.fact('formula-carbon dioxide'), 'Therefore, the answer is CO.'), False)
    test_eq(w.is_correct(w.fact('vitamin-pernicious anemia'), 'The answer is vitamin B1'), False)
    test_eq(w.is_correct(w.fact('pct-40-50'), 'Therefore, the answer is 0.25'), True)
    test_eq(w.is_correct(w.fact('who-roman-emperor'), 'Therefore, the answer is Caesar Augustus.'), True)
    test_eq(w.is_correct(w.fact('who-roman-emperor'), 'Therefore, the answer is Caesar.'), False)

def test_world_is_self_consistent():
    "Every surface form of every answer is read back as that answer and as nothing else."
    w = toy_world()
    for d in TOY_DOMAINS:
        m = w._matchers[d]
        for a in w.pools[d]:
            for form in a.forms:
                assert m.judge(a, f'Therefore, the answer is {form}.'), (d, form)
                assert not any(m.judge(b, f'Therefore, the answer is {form}.') for b in w.pools[d] if b != a), (d, form)

def test_toy_dataset_seeds_domains_and_refusal():
    ds = make_toy_dataset(8, seed=0)
    test_eq(make_toy_dataset(8, seed=0).to_list(), ds.to_list())
    test_ne(make_toy_dataset(8, seed=1)['question'], ds['question'])
    test_eq(set(make_toy_dataset(50, domains=['history'])['field']), {'Humanities'})
    test_fail(lambda: make_toy_dataset(5, domains=['astrology']), contains='astrology')

# ------------------------------------------------------------------------------------------------ 01b_toy_oracle
def test_oracle_refuses_questions_from_elsewhere():
    o = ToyOracle()
    test_fail(lambda: o.judge(['What is love?'], ['x'], ['baby']), contains='rows [0]')

# ------------------------------------------------------------------------------------------------ 01c_toy_models
def test_toy_tokenizer_verdict_ids_and_chat_template(tok):
    yes, no = tok.encode('YES', add_special_tokens=False), tok.encode('NO', add_special_tokens=False)
    test_eq(tok.convert_tokens_to_ids(['YES', 'NO']), yes + no)
    chat = tok.apply_chat_template(policy_messages('What is 7 times 8?'), tokenize=False, add_generation_prompt=True)
    test_eq(chat, f'<|im_start|>system\n{POLICY_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\nWhat is 7 times 8?<|im_end|>\n<|im_start|>assistant\n')

def test_toy_model_seed_changes_weights(tok):
    m1 = toy_model(tok, seed=0)
    test_ne(torch.equal(toy_model(tok, seed=1).model.embed_tokens.weight, m1.model.embed_tokens.weight), True)

def test_qwen_tokenizer_size_and_default_system_prompt():
    qt = qwen_tokenizer()
    test_eq(len(qt), 151665)
    test_eq(qt.apply_chat_template([{'role': 'user', 'content': 'Hi'}], tokenize=False, add_generation_prompt=True),
            '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'
            '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')

def test_shared_prefix_loss_equals_a_plain_padded_forward(tok):
    _m = toy_model(tok)
    _its = toy_world().split_items('train')[:4]
    _ps = tok([tok.apply_chat_template(policy_messages(it.question), tokenize=False, add_generation_prompt=True) for it in _its], add_special_tokens=False)['input_ids']
    _rs = tok([f'Therefore, the answer is {it.fact.answer.canonical}.' for it in _its], add_special_tokens=False)['input_ids']
    _P = _common_prefix(_ps) - 1
    _full = [p + r for p, r in zip(_ps, _rs)]; _L = max(map(len, _full))
    _ids = torch.tensor([s + [tok.pad_token_id] * (_L - len(s)) for s in _full])
    _att = torch.tensor([[1] * len(s) + [0] * (_L - len(s)) for s in _full])
    _lab = torch.tensor([[-100] * len(p) + r + [-100] * (_L - len(p) - len(r)) for p, r in zip(_ps, _rs)])
    with torch.no_grad():
        test_close(_batch_loss(_m, _ps[0][:_P], _ps, _rs, tok.pad_token_id).item(), _m(input_ids=_ids, attention_mask=_att, labels=_lab).loss.item(), eps=1e-4)
    test_eq((_P, len(_ps[0])), (54, 69))   # the notebook's stored output

# ------------------------------------------------------------------------------------------------ 05b_toy_distill
def test_judge_template_segments_and_judge_tokenizer(tok):
    from rlvr_nb.reward import JUDGE_SYSTEM_PROMPT, JUDGE_TEMPLATE, judge_messages
    from rlvr_nb.toy.recipes import judge_template_segments, toy_judge_tokenizer
    segs = judge_template_segments()
    test_eq(segs[0], JUDGE_SYSTEM_PROMPT)
    test_eq(''.join(segs[1:]), JUDGE_TEMPLATE.replace('{question}', '').replace('{response}', '').replace('{reference}', ''))
    jtok, btok = toy_judge_tokenizer(), tok
    demo_msgs = judge_messages('What is the chemical formula of table salt?', 'Therefore, the answer is NaCl.', 'sodium chloride (NaCl)')
    n_base = len(btok.apply_chat_template(demo_msgs, tokenize=True, add_generation_prompt=True, return_dict=True)['input_ids'])
    ids = jtok.apply_chat_template(demo_msgs, tokenize=True, add_generation_prompt=True, return_dict=True)['input_ids']
    test_eq([len(jtok.encode(w, add_special_tokens=False)) for w in ('YES', 'NO')], [1, 1])
    assert len(ids) < n_base / 3

def test_toy_settings_former_names():
    "Overrides and `TOY_DISTILL` keys by their former names still work, with a warning."
    from rlvr_nb.toy.recipes import TOY_DISTILL, _toy_settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        s = _toy_settings({'epochs': 3, 'lr': 1e-3})
        test_eq((s['num_train_epochs'], s['learning_rate'], TOY_DISTILL['explore_lr']), (3, 1e-3, 2e-5))
    test_eq([w.category for w in caught], [FutureWarning] * 3)
    test_fail(lambda: _toy_settings({'lr': 1e-3, 'learning_rate': 1e-4}), contains='got both')
    test_fail(lambda: _toy_settings({'epochz': 3}), contains='unknown toy distillation settings')

def test_splits_never_share_a_question_and_references_are_messy():
    test_eq(set(make_toy_dataset(2000, split='test')['question']) & set(make_toy_dataset(2000, split='train')['question']), set())
    import pandas as pd
    its = toy_world().items
    stats = pd.DataFrame([{'domain': it.fact.domain, 'split': it.split, 'single_term': it.ref_kind == 'term', 'kind': it.ref_kind} for it in its])
    assert 0.42 < stats.single_term.mean() < 0.55

def test_oracle_soft_reward_of_a_right_answer():
    ds = make_toy_dataset(4, seed=3, domains=['chemistry'])
    o = ToyOracle()
    f0 = toy_world().find(ds[0]['question'])
    good = f'Thought Process: recall.\nTherefore, the answer is {f0.answer.forms[-1]}.'
    test_eq(o.rewards([ds[0]['question']], [good], [ds[0]['reference']], kind='soft'), [1.0])

def test_toy_tokenizer_round_trips_any_text(tok):
    for s in ['Thought Process: add.\nTherefore, the answer is 56.', 'Ünïcødé ✓ 中文 {braces} \r\n\ttabs', 'YES', 'NOTE: say NO or YES.']:
        test_eq(tok.decode(tok.encode(s, add_special_tokens=False)), s)

def test_answer_reader_on_forms_of_56():
    w = toy_world()
    f = w.fact('mul-7-8')
    for resp, want in [('Thought Process: multiply.\nTherefore, the answer is 56.', True), ('Therefore, the answer is fifty-six.', True),
                       ('Therefore, the answer is 56.0', True), ('7 × 8 = 56', True), ('Therefore, the answer is 63.', False),
                       ('Therefore, the answer is 56 or 57.', False), ('Thought Process:', False), ('', False), ('The answer is 560.', False)]:
        test_eq(w.is_correct(f, resp), want)

def test_small_run_split_shares_no_question():
    "The notebook splits its small exploration run (3 steps over 32 questions); here rows of the same shape, no training."
    from datasets import Dataset
    from rlvr_nb.distill import split_by_question
    qs = make_toy_dataset(32, seed=1)
    small = Dataset.from_list([dict(question=q, reference=r, response='Therefore, the answer is x', verdict='NO', step=s)
                               for s in range(3) for q, r in zip(qs['question'], qs['reference'])])
    tr, ho = split_by_question(small, heldout=0.25)
    assert not set(tr.question) & set(ho.question)

def test_number_words_stop_at_999():
    from rlvr_nb.toy.world import number_words
    test_fail(lambda: number_words(1000), contains='0..999')

def test_qwen_control_token_ids():
    qt = qwen_tokenizer()
    test_eq(qt.convert_tokens_to_ids(['<|endoftext|>', '<|im_start|>', '<|im_end|>']), [151643, 151644, 151645])
