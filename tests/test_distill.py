"""Tests of rlvr_nb.distill on real (tiny) components: the toy tokenizer, tiny Qwen2 models, TRL's SFTTrainer, the toy
oracle as teacher; the toy student of rlvr_nb.toy.recipes; the former names that still work."""
import json, math, os

import numpy as np
import pytest
import torch

from rlvr_nb.data import DataError
from rlvr_nb.distill import (augment_negatives, evaluate_verifier, expected_calibration_error, label_balance, master_key_probe,
                             train_verifier, verdict_sft_dataset)
from rlvr_nb.master_keys import HELDOUT_PROBE_KEYS, MASTER_KEYS, TRAINING_NEGATIVE_KEYS
from rlvr_nb.reward import GenerativeVerifier
from rlvr_nb.toy import ToyOracle, make_toy_dataset, toy_model, toy_tokenizer
from rlvr_nb.verify import Verdict, Verifier


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def tok(): return toy_tokenizer()


@pytest.fixture(scope='module')
def toy_rows():
    return make_toy_dataset(12, seed=3).to_list()


class AlwaysYes(Verifier):
    name = 'always-yes'
    def judge(self, questions, responses, references): return [Verdict('YES', 0.9, 0.1) for _ in questions]


def exploration_rows(rows):
    "Judged samples in the exploration schema: the correct canonical answer, a wrong one, and a duplicate."
    from rlvr_nb.toy import toy_response, toy_world
    w, out = toy_world(), []
    for i, r in enumerate(rows):
        f = w.find(r['question'])
        for resp in (toy_response(f, f.answer.forms[0]),
                     toy_response(f, f.misconception.forms[0]),
                     f"Hmm.\nTherefore, the answer is {f.answer.forms[0]}."):   # same final step as the first
            out.append(dict(prompt_id=i, question=r['question'], reference=r['reference'], response=resp, field=r['field']))
    v = ToyOracle().judge([o['question'] for o in out], [o['response'] for o in out], [o['reference'] for o in out])
    for o, x in zip(out, v): o['verdict'] = x.label
    return out


# --- verdict_sft_dataset ---------------------------------------------------------------------------------------------

def test_verdict_sft_dataset_columns_dedupe_balance(toy_rows):
    expl = exploration_rows(toy_rows)
    ds = verdict_sft_dataset(expl, verbose=False)
    assert {'prompt', 'completion', 'label', 'question', 'reference', 'response', 'final_step', 'field', 'prompt_id'} <= set(ds.column_names)
    assert len(ds) == 2 * len(toy_rows)                                   # the duplicate final step is gone
    assert label_balance(ds) == {'n': len(ds), 'YES': len(toy_rows), 'NO': len(toy_rows), 'yes_share': 0.5}
    row = ds[0]
    assert [m['role'] for m in row['prompt']] == ['system', 'user']
    assert row['completion'] == [{'role': 'assistant', 'content': row['label']}]
    assert row['final_step'] in row['prompt'][1]['content'] and 'Thought Process' not in row['prompt'][1]['content']
    assert len(verdict_sft_dataset(expl, dedupe=False, verbose=False)) == len(expl)
    # balance: undersample the larger class to a YES share of 0.25
    n = len(toy_rows)
    assert label_balance(verdict_sft_dataset(expl, balance=0.25, verbose=False)) == {'n': n + n // 3, 'YES': n // 3, 'NO': n, 'yes_share': 0.25}
    assert label_balance(verdict_sft_dataset(expl[:-3], balance='undersample', verbose=False))['yes_share'] == 0.5
    with pytest.raises(ValueError, match='balance'): verdict_sft_dataset(expl, balance='sometimes', verbose=False)


def test_verdict_sft_dataset_bad_rows(toy_rows, capsys):
    expl = exploration_rows(toy_rows)[:6]
    expl[1] = dict(expl[1], verdict='maybe'); expl[4] = dict(expl[4], verdict=None)
    ds = verdict_sft_dataset(expl)
    assert len(ds) == 2 and 'dropped 2 unparseable verdicts (rows [1, 4])' in capsys.readouterr().out
    # self-contradicting teacher on one final step: majority kept, ties dropped
    same = [dict(expl[0], verdict=v) for v in ('YES', 'NO', 'NO')]
    assert verdict_sft_dataset(same, verbose=False)['label'] == ['NO']
    with pytest.raises(DataError, match='no usable rows'): verdict_sft_dataset(same[:2], verbose=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['verdict'\]"):
        verdict_sft_dataset([{k: v for k, v in expl[0].items() if k != 'verdict'}])
    with pytest.raises(DataError, match=r"'question': rows \[1\]"):
        verdict_sft_dataset([expl[0], dict(expl[0], question='  ')])


# --- augment_negatives / master_key_probe ----------------------------------------------------------------------------

def test_augment_negatives(toy_rows):
    ds = verdict_sft_dataset(exploration_rows(toy_rows), verbose=False)
    aug = augment_negatives(ds, rate=0.5, seed=0, verbose=False)
    new = aug.select(range(len(ds), len(aug)))
    assert len(new) == round(0.5 * len(ds)) and aug['augmented'][:len(ds)] == [False] * len(ds)
    assert set(new['label']) == {'NO'} and set(new['augmented']) == {True}
    assert set(new['final_step']) <= set(TRAINING_NEGATIVE_KEYS) and not set(new['final_step']) & set(HELDOUT_PROBE_KEYS)
    counts = np.unique(new['final_step'], return_counts=True)[1]
    assert counts.max() - counts.min() <= 1                               # keys spread evenly
    for r in new: assert r['final_step'] in r['prompt'][1]['content'] and r['completion'][0]['content'] == 'NO'
    assert augment_negatives(ds, rate=0.5, seed=0, verbose=False)['final_step'] == aug['final_step']   # seeded
    assert augment_negatives(ds, rate=0.0, verbose=False) is ds


def test_master_key_probe_extremes(toy_rows):
    qs, refs = [r['question'] for r in toy_rows], [r['reference'] for r in toy_rows]
    r = master_key_probe(AlwaysYes(), qs, refs)
    assert r.rate == 1.0 and r.n == len(qs) * len(MASTER_KEYS) and set(r.per_key.fp_rate) == {1.0}
    assert r.soft == pytest.approx(0.9)
    o = master_key_probe(ToyOracle(), qs, refs)
    assert o.rate <= 0.02, o.per_key[o.per_key.fp_rate > 0]
    assert list(o.per_key.columns[:3]) == ['key', 'kind', 'split']
    assert set(o.by('split').index) == {'train', 'probe'}


# --- evaluate_verifier -------------------------------------------------------------------------------------------------

class Fixed(Verifier):
    "Returns preset verdicts in order."
    def __init__(self, verdicts): self.v = list(verdicts)
    def judge(self, q, r, a): out, self.v = self.v[:len(q)], self.v[len(q):]; return out


def test_evaluate_verifier_matches_sklearn(toy_rows):
    from sklearn.metrics import cohen_kappa_score, f1_score
    expl = exploration_rows(toy_rows)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=len(expl))
    vs = [Verdict('YES' if x > 0.5 else 'NO', x, 1 - x) for x in p]
    vs[3] = Verdict(None, 0.0, 0.0)                                        # a parse failure counts as NO
    rep = evaluate_verifier(Fixed(vs), expl)
    t = np.array([e['verdict'] == 'YES' for e in expl], int)
    s = np.array([v.label == 'YES' for v in vs], int)
    assert rep.overall['accuracy'] == pytest.approx((t == s).mean())
    assert rep.overall['kappa'] == pytest.approx(cohen_kappa_score(t, s))
    assert rep.overall['f1'] == pytest.approx(f1_score(t, s))
    assert rep.overall['parse_failure_rate'] == pytest.approx(1 / len(expl))
    pn = np.array([v.soft_normalized for v in vs])
    assert rep.overall['ece'] == pytest.approx(expected_calibration_error(pn, t))
    assert set(rep.per_field.index) == {r['field'] for r in toy_rows}
    assert rep.per_field.n.sum() == len(expl)
    perfect = evaluate_verifier(ToyOracle(), expl)
    assert (perfect.overall['accuracy'], perfect.overall['kappa'], perfect.overall['ece']) == (1.0, 1.0, 0.0)


# --- train_verifier ----------------------------------------------------------------------------------------------------

def _p_yes(path, rows):
    v = GenerativeVerifier.from_pretrained(str(path), sample=False)
    return np.array([x.p_yes for x in v.judge([r['question'] for r in rows], [r['response'] for r in rows],
                                              [r['reference'] for r in rows])])


@pytest.mark.parametrize('lora', [None, True])
def test_train_verifier_loadable_and_learns(tmp_path, tok, toy_rows, lora):
    "A few SFT steps on all-YES rows raise P(YES); the directory loads with GenerativeVerifier.from_pretrained."
    rows = [dict(r, verdict='YES') for r in exploration_rows(toy_rows[:4])]
    ds = verdict_sft_dataset(rows, verbose=False)
    student = toy_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    base = tmp_path / 'base'; student.save_pretrained(base); tok.save_pretrained(base)
    out = train_verifier(student, ds, tokenizer=tok, output_dir=tmp_path / 'v', num_train_epochs=8, learning_rate=2e-2, batch_size=4,
                         micro_batch_size=4, max_length=512, lora=lora, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['base', 'v']          # no temporary or work folders left
    meta = json.loads((out / 'train_verifier.json').read_text())
    assert meta['rows'] == len(ds) and meta['batch_size'] == 4 and meta['lora'] == (lora is True)
    before, after = _p_yes(base, rows), _p_yes(out, rows)
    assert before.mean() < 0.01, before.mean()
    # full fine-tuning: from ~1/vocab to a real mass; LoRA (rank 16 on the linear layers of a random model) moves slower
    assert after.mean() > (0.2 if lora is None else 1.5 * before.mean()), (before.mean(), after.mean())
    assert not (out / 'adapter_config.json').exists()                             # LoRA merged into a plain model


def test_train_verifier_refuses_bad_input(tmp_path, tok, toy_rows):
    ds = verdict_sft_dataset(exploration_rows(toy_rows[:2]), verbose=False)
    student = toy_model(tok, hidden_size=32, num_layers=1, seed=0)
    with pytest.raises(DataError, match='missing column'):
        train_verifier(student, ds.remove_columns('completion'), tokenizer=tok, output_dir=tmp_path / 'x')
    from rlvr_nb.toy import TOY_CHAT_TEMPLATE
    bad = toy_tokenizer(); bad.chat_template = TOY_CHAT_TEMPLATE.replace("'<|im_start|>assistant\\n' }}{% generation %}", "'<|im_start|>assistant\\n' }}{% generation %}{{- 'ok ' }}")
    with pytest.raises(DataError, match="row 0: the completion must start with the verdict"):
        train_verifier(student, ds, tokenizer=bad, output_dir=tmp_path / 'x')
    assert not (tmp_path / 'x').exists()


def test_train_verifier_checks_every_row_not_the_first(tmp_path, tok, toy_rows):
    "A NO row that says another word than the other NO rows is refused by its row number, wherever it is."
    ds = verdict_sft_dataset(exploration_rows(toy_rows[:3]), verbose=False)
    rows = ds.to_list()
    k = max(i for i, r in enumerate(rows) if r['label'] == 'NO')
    assert k > 0
    rows[k]['completion'] = [{'role': 'assistant', 'content': 'YES'}]          # a NO row labelled with the YES word
    student = toy_model(tok, hidden_size=32, num_layers=1, seed=0)
    from datasets import Dataset
    with pytest.raises(DataError, match=f"row {k} \\(label NO\\) answers 'YES', but the NO word is 'NO'"):
        train_verifier(student, Dataset.from_list(rows), tokenizer=tok, output_dir=tmp_path / 'x')
    with pytest.raises(DataError, match="row 0 \\(label YES\\) answers 'YES', but the YES word is 'Y'"):
        train_verifier(student, ds, tokenizer=tok, yes='Y', output_dir=tmp_path / 'x')
    assert not (tmp_path / 'x').exists()


def test_multi_token_verdict_words_flow_into_the_rows_and_the_check(toy_rows):
    "verdict_sft_dataset writes the given words; the token check accepts a word of several tokens and names a bad row."
    from rlvr_nb.distill import _check_verdict_tokens, _verdict_words
    from rlvr_nb.toy import qwen_tokenizer
    qtok = qwen_tokenizer()
    yes, no = 'Correct answer', 'NO'
    assert len(qtok.encode(yes, add_special_tokens=False)) >= 2
    ds = verdict_sft_dataset(exploration_rows(toy_rows[:3]), verbose=False, yes=yes, no=no)
    assert {(r['label'], r['completion'][0]['content']) for r in ds} == {('YES', yes), ('NO', no)}
    assert _verdict_words(ds, None, None) == (yes, no)
    lens = _check_verdict_tokens(qtok, ds, yes, no)
    assert len(lens) == len(ds) and min(lens) > 100
    aug = augment_negatives(ds, rate=0.5, seed=0, verbose=False)          # master-key negatives say the dataset's NO word
    assert {r['completion'][0]['content'] for r in aug if r['augmented']} == {no}
    with pytest.raises(ValueError, match='two different'): verdict_sft_dataset(exploration_rows(toy_rows[:1]), yes='NO', no='NO')


def test_labelled_positions_only_same_training_as_stock_trl(tmp_path, tok, toy_rows):
    "Scoring only the labelled positions (our CPU speed-up of TRL's fused LM head) trains the same weights as TRL's default."
    import trl.trainer.utils as U
    from rlvr_nb.distill import labelled_positions_only
    orig = U._use_triton
    with labelled_positions_only():
        assert U._use_triton(torch.device('cpu')) and U._use_triton is not orig
    assert U._use_triton is orig and not U._use_triton(torch.device('cpu'))     # restored
    ds = verdict_sft_dataset(exploration_rows(toy_rows[:4]), verbose=False)
    outs = {}
    for fast in (True, False):
        student = toy_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=0)
        outs[fast] = train_verifier(student, ds, tokenizer=tok, output_dir=tmp_path / f'v{fast}', num_train_epochs=3, learning_rate=1e-2,
                                    batch_size=4, micro_batch_size=4, max_length=512, verbose=False, score_labelled_only=fast)
    from transformers import AutoModelForCausalLM
    a, b = (AutoModelForCausalLM.from_pretrained(outs[f]).state_dict() for f in (True, False))
    init = toy_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=0).state_dict()
    moved = max((a[k] - init[k]).abs().max().item() for k in a)
    assert moved > 1e-3                                          # training did something
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    ma, mb = (json.loads((outs[f] / 'train_verifier.json').read_text()) for f in (True, False))
    assert ma['score_labelled_only'] and not mb['score_labelled_only']
    assert math.isclose(ma['train_loss'], mb['train_loss'], rel_tol=1e-4)


# --- the toy student (rlvr_nb.toy.recipes) ------------------------------------------------------------------------

def test_toy_student_reads_short_judge_prompts_and_round_trips(tmp_path, toy_rows):
    "The toy student is the pretrained toy policy with the judge tokenizer: same text, ~1/4 of the tokens, a verifier after SFT."
    from rlvr_nb.toy.recipes import toy_student
    from rlvr_nb.reward import judge_messages
    model, jtok = toy_student('policy')
    assert model.get_input_embeddings().weight.shape[0] == len(jtok) == len(toy_tokenizer()) + 5
    r = toy_rows[0]
    msgs = judge_messages(r['question'], 'Therefore, the answer is 42.', r['reference'])
    short = jtok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=True)['input_ids']
    long = toy_tokenizer().apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=True)['input_ids']
    assert len(short) * 3 < len(long)
    assert jtok.decode(short) == toy_tokenizer().decode(long)
    again, _ = toy_student('policy')                                    # deterministic: the new rows are seeded
    assert torch.equal(again.get_input_embeddings().weight, model.get_input_embeddings().weight)
    with pytest.raises(ValueError, match="'policy' or a dict"):
        toy_student('random')
    rows = [dict(x, verdict='YES') for x in exploration_rows(toy_rows[:4])]
    out = train_verifier(model, verdict_sft_dataset(rows, verbose=False), tokenizer=jtok, output_dir=tmp_path / 'v', num_train_epochs=2,
                         learning_rate=1e-3, batch_size=4, micro_batch_size=4, max_length=256, verbose=False)
    v = GenerativeVerifier.from_pretrained(str(out), sample=False)
    assert len(v.tokenizer) == len(jtok)
    ps = [x.p_yes for x in v.judge([x['question'] for x in rows], [x['response'] for x in rows], [x['reference'] for x in rows])]
    assert all(0.0 <= p <= 1.0 for p in ps)


# --- former names --------------------------------------------------------------------------------------------------------

def test_former_names_still_work(tmp_path, tok, toy_rows):
    "What moved keeps its old import path, and the former hyperparameter names still train, with a FutureWarning."
    import rlvr_nb.distill as D, rlvr_nb.explore as E, rlvr_nb.master_keys as K, rlvr_nb.rl as RL
    from rlvr_nb.toy import recipes
    for name in ('collect_exploration', 'load_exploration', 'shard_paths', 'ShardWriter', 'ExplorationRecorder'):
        assert getattr(D, name) is getattr(E, name) and name in D.__all__
    for name in ('TOY_DISTILL', 'toy_student', 'toy_exploration', 'distilled_toy_verifier', 'toy_judge_tokenizer', 'judge_template_segments'):
        assert getattr(D, name) is getattr(recipes, name)
    assert D.TRAIN_KEYS is K.TRAIN_KEYS is K.TRAINING_NEGATIVE_KEYS and D.PROBE_KEYS is K.PROBE_KEYS is K.HELDOUT_PROBE_KEYS
    assert D.MASTER_KEYS is K.MASTER_KEYS and RL.NON_ANSWER_PATTERNS is K.NON_ANSWER_PATTERNS and 'NON_ANSWER_PATTERNS' in RL.__all__
    ds = verdict_sft_dataset(exploration_rows(toy_rows[:2]), verbose=False)
    student = toy_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    with pytest.warns(FutureWarning) as caught:
        out = train_verifier(student, ds, tokenizer=tok, output_dir=tmp_path / 'v', epochs=1, lr=1e-3, batch_size=4,
                             micro_batch_size=4, max_length=512, verbose=False)
    assert [str(w.message).split(' (')[0] for w in caught if w.category is FutureWarning] == [
        "train_verifier: 'epochs' is now called 'num_train_epochs'", "train_verifier: 'lr' is now called 'learning_rate'"]
    meta = json.loads((out / 'train_verifier.json').read_text())
    assert (meta['num_train_epochs'], meta['learning_rate']) == (1, 1e-3)
    with pytest.raises(TypeError, match='got both'):
        train_verifier(student, ds, tokenizer=tok, output_dir=tmp_path / 'x', lr=1e-3, learning_rate=1e-4)
    with pytest.warns(FutureWarning, match=r"TOY_DISTILL\['lr'\] is now TOY_DISTILL\['learning_rate'\]"):
        assert recipes.TOY_DISTILL['lr'] == recipes.TOY_DISTILL['learning_rate']
    with pytest.raises(KeyError): recipes.TOY_DISTILL['no_such_setting']
