"""Checks moved out of `nbs/08d_plan.ipynb`, where the model shapes keep the paper's models: a toy judge has no shape."""
from fastcore.test import test_eq
test_eq.__test__ = False   # fastcore's helper, not a test

from rlvr_nb.plan import model_shape

def test_toy_judge_has_no_model_shape():
    test_eq(model_shape('toy-oracle@0.05'), None)
