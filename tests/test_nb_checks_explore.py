"""Checks moved out of `nbs/05_explore.ipynb`, where each function keeps one example: the recorded rows' columns, a
replayed step that reuses the recorded verdicts, and the former name `n` (a warning; an error beside `num_generations`)."""
import shutil, tempfile, warnings
from pathlib import Path

from datasets import Dataset
from fastcore.test import test_eq, test_fail
for _f in (test_eq, test_fail): _f.__test__ = False   # fastcore's helpers, not tests

from rlvr_nb.explore import ExplorationRecorder, ShardWriter, collect_exploration, load_exploration
from rlvr_nb.toy import ToyOracle, make_toy_dataset, toy_model, toy_tokenizer
from rlvr_nb.verify import RuleVerifier, Verdict, Verifier

class _AlwaysYes(Verifier):
    "A teacher that accepts everything: a NO from it can only be a recorded verdict, reused."
    name = 'always-yes'
    def judge(self, questions, responses, references): return [Verdict('YES', 1.0, 0.0) for _ in questions]

def test_recorded_rows_keep_final_steps_ids_steps_and_fields():
    d = Path(tempfile.mkdtemp())
    rec = ExplorationRecorder(RuleVerifier('contains'), ShardWriter(d, rank=0))
    class _State: global_step = 3
    kw = dict(question=['What is 2+2?'] * 2, reference=['4'] * 2, prompt_id=[7, 7], field=['STEM'] * 2)
    rec(prompts=[None] * 2, completions=[[{'role': 'assistant', 'content': 'so\nit is 4'}], 'it is 5'], trainer_state=_State, **kw)
    rec(prompts=[None] * 2, completions=['4', ':'], trainer_state=_State, **kw)
    e = load_exploration(d)
    test_eq(e['final_step'], ['it is 4', 'it is 5', '4', ':'])
    test_eq((e['prompt_id'], e['step'], e['field'][0]), ([7] * 4, [3] * 4, 'STEM'))
    # a replayed step with the same samples reuses the recorded verdicts instead of asking the teacher
    rec2 = ExplorationRecorder(_AlwaysYes(), ShardWriter(d, rank=0))
    test_eq(rec2(prompts=[None] * 2, completions=['so\nit is 4', 'it is 5'], trainer_state=_State, **kw), [1.0, 0.0])
    test_eq((rec2.reused, rec2.judged, rec2.writer.skipped), (2, 0, 1))
    shutil.rmtree(d)

def test_former_name_n():
    "The checks stop before the policy is used, so any policy (here a tiny random one) and any dataset do."
    tok = toy_tokenizer()
    policy, demo, work = toy_model(tok, hidden_size=32, num_layers=1), make_toy_dataset(4), Path(tempfile.mkdtemp())
    import rlvr_nb.rl   # the trainer's modules load before the check, as in the notebook (whose run came first)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        test_fail(lambda: collect_exploration(policy, ToyOracle(), Dataset.from_list([{'question': 'q'}]), output_dir=work / 'x', n=2),
                  contains='lacks')
    test_eq([(w.category, "'n' is now called 'num_generations'" in str(w.message)) for w in caught], [(FutureWarning, True)])
    test_fail(lambda: collect_exploration(policy, ToyOracle(), demo, output_dir=work / 'x', n=2, num_generations=2), contains='got both')
    shutil.rmtree(work)
