"""Checks moved out of `nbs/00b_models.ipynb`, where each function keeps one example: an unknown model name, a GGUF
spec that does not exist, and `model_spec_problem`."""
import tempfile

from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.models import model_spec_problem, named_model_files, resolve_model

def test_unknown_named_model():
    test_fail(lambda: named_model_files('gpt-7'), contains='the named models are')

def test_missing_specs():
    with tempfile.TemporaryDirectory() as d:
        test_fail(lambda: resolve_model(f'{d}/missing.gguf'), contains='GGUF file not found')
        test_eq(model_spec_problem('./no/such/model'), 'local model not found: ./no/such/model')
