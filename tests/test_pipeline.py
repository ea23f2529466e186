"""The pipeline end to end on the toy world (small budget), resume, and a failing stage.

One module-scoped run of every stage (agreement, explore, distill, two policies, evaluate, report), then:
a second run that must skip every stage (DONE markers and their timestamps unchanged), a run whose
evaluation fails (a grader directory that is not a model) and must name the stage and leave the earlier
outputs intact, and the report's files and schema.
"""
import json, os, time
from pathlib import Path

import pytest
import torch

from rlvr_nb.pipeline import (ConfigError, RunConfig, StageError, build_stages, check_config, rebuild_report, run_pipeline,
                              stage_done, stage_hashes)

def tiny_policy(path) -> str:
    "A small randomly initialised toy-world policy saved as a model directory (the pretrained one is for the evidence run)."
    from rlvr_nb.toy import toy_model, toy_tokenizer
    path = Path(path)
    if not (path / 'config.json').is_file():
        tok = toy_tokenizer()
        toy_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=0).save_pretrained(str(path)); tok.save_pretrained(str(path))
    return str(path)

def tiny_config(out) -> RunConfig:
    "Every stage for real, on a budget that fits a test: 2 policies, a few RL steps, short answers, a small random policy."
    return RunConfig.toy(output_dir=str(out), **{
        'models.policy': tiny_policy(Path(out).parent / 'tiny_policy'),
        'data.n_explore': 16, 'data.n_train': 16, 'data.n_test': 24,
        'agreement.n_items': 24, 'agreement.samples': 3, 'agreement.bootstrap': 50,
        'explore.max_steps': 2, 'explore.max_completion_length': 16, 'explore.per_device_train_batch_size': 16,
        'distill.batch_size': 16, 'distill.num_train_epochs': 1, 'distill.heldout': 0.25, 'distill.sft_args': {'micro_batch_size': 16},
        'train.rewards': ['rule_binary', 'student_soft'], 'train.max_steps': 2, 'train.max_completion_length': 16,
        'train.per_device_train_batch_size': 8, 'train.monitor_grader': False,
        'evaluate.max_new_tokens': 16})

@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp('pipeline') / 'run'
    t0 = time.time()
    run_pipeline(tiny_config(out), progress=False, verbose=False)
    print(f"pipeline end to end: {time.time() - t0:.1f} s")
    return out

STAGES = ['agreement', 'explore', 'distill', 'train/rule_binary', 'train/student_soft', 'evaluate', 'report']

def test_end_to_end_outputs(run_dir):
    for s in STAGES: assert stage_done(run_dir, s) is not None, s
    assert [s.name for s in build_stages(tiny_config(run_dir))] == STAGES
    res = json.loads((run_dir / 'results.json').read_text())
    names = [p['name'] for p in res['policies']]
    assert names == ['rule_binary', 'student_soft']
    for p in res['policies']:
        assert p['reward_source'] in ('rule', 'teacher', 'student') and p['reward_kind'] in ('binary', 'soft')
        assert 0 <= p['accuracy'] <= 100 and p['by_field'] and all(0 <= v <= 100 for v in p['by_field'].values())
    assert (run_dir / 'train' / 'student_soft' / 'policy' / 'config.json').is_file()
    assert (run_dir / 'distill' / 'verifier' / 'config.json').is_file()
    md = (run_dir / 'report.md').read_text()
    for part in ('Held-out accuracy', 'rule_binary', 'student_soft', 'Judge agreement', 'Student verifier', 'Stages', 'paper'):
        assert part in md, part
    for png in ('fields.png', 'learning_curves.png', 'reliability.png', 'agreement.png'):
        assert (run_dir / 'report' / png).stat().st_size > 1000, png
    recs = [json.loads(l) for l in (run_dir / 'metrics.jsonl').read_text().splitlines()]
    assert {r['stage'] for r in recs} >= {'agreement', 'explore', 'distill', 'train/rule_binary', 'evaluate'}
    assert any(r['name'] == 'accuracy' and r.get('policy') == 'student_soft' for r in recs)
    assert not [p for p in run_dir.iterdir() if p.name.startswith(('.tmp', '.old'))]

def test_resume_skips_finished_stages(run_dir):
    before = {s: stage_done(run_dir, s)['finished'] for s in STAGES}
    t0 = time.time()
    run_pipeline(tiny_config(run_dir), progress=False, verbose=False)
    assert time.time() - t0 < 30        # nothing retrained (the first run takes minutes)
    assert {s: stage_done(run_dir, s)['finished'] for s in STAGES} == before

def test_renamed_keys_resume_without_rerunning(run_dir):
    "A config written with the old names of renamed keys has the same stage hashes: the run resumes, nothing reruns."
    before = {s: stage_done(run_dir, s) for s in STAGES}
    old = tiny_config(run_dir).to_dict()
    old['distill']['epochs'], old['distill']['holdout'] = old['distill'].pop('num_train_epochs'), old['distill'].pop('heldout')
    with pytest.warns(FutureWarning, match="'distill.epochs' is now 'distill.num_train_epochs'"):
        cfg = RunConfig.from_dict(old)
    assert cfg == tiny_config(run_dir)
    assert stage_hashes(build_stages(cfg)) == {s: before[s]['config_hash'] for s in STAGES}
    run_pipeline(cfg, progress=False, verbose=False)
    assert {s: stage_done(run_dir, s)['finished'] for s in STAGES} == {s: before[s]['finished'] for s in STAGES}

def test_failing_stage_is_named_and_keeps_earlier_outputs(run_dir, tmp_path):
    before = {s: stage_done(run_dir, s) for s in STAGES}
    not_a_model = tmp_path / 'not_a_model'; not_a_model.mkdir()
    cfg = tiny_config(run_dir); cfg.models.grader = str(not_a_model)     # valid config, fails at run time
    with pytest.raises(StageError, match="stage 'evaluate' failed") as e:
        run_pipeline(cfg, progress=False, verbose=False)
    assert e.value.stage == 'evaluate'
    for s in STAGES: assert stage_done(run_dir, s) == before[s], s   # evaluate's previous outputs are intact too
    assert (run_dir / 'evaluate' / 'rule_binary.parquet').is_file()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(('.tmp', '.old'))]
    # the run goes on with the original config: nothing to redo
    run_pipeline(tiny_config(run_dir), progress=False, verbose=False)
    assert {s: stage_done(run_dir, s)['finished'] for s in STAGES} == {s: before[s]['finished'] for s in STAGES}

def test_only_some_stages_needs_their_dependencies(run_dir, tmp_path):
    cfg = tiny_config(tmp_path / 'fresh')
    with pytest.raises(StageError, match="needs stage 'distill', which is not complete"):
        run_pipeline(cfg, stages='train/student_soft', progress=False, verbose=False)
    assert not (tmp_path / 'fresh' / 'train').exists()

def test_report_rebuilds_from_files(run_dir):
    (run_dir / 'report.md').unlink(); (run_dir / 'results.json').unlink()
    p = rebuild_report(run_dir)
    assert p == run_dir / 'report.md' and 'Held-out accuracy' in p.read_text()
    assert 'Student verifier' in p.read_text() and (run_dir / 'distill' / 'heldout_predictions.parquet').is_file()
    assert json.loads((run_dir / 'results.json').read_text())['policies'][0]['name'] == 'rule_binary'

def test_bad_configs_refused_before_work(tmp_path):
    out = tmp_path / 'never'
    with pytest.raises(ConfigError, match="did you mean 'estimator'"):
        run_pipeline({'train': {'estimater': 'rloo'}, 'output_dir': str(out)})
    with pytest.raises(ConfigError, match='local file not found'):
        run_pipeline(RunConfig.toy(output_dir=str(out), **{'data.test': str(tmp_path / 'missing.jsonl')}))
    with pytest.raises(ConfigError, match='no CUDA device'):
        run_pipeline(RunConfig.paper(output_dir=str(out)), cuda=False)
    with pytest.raises(ConfigError, match="unknown stage 'trian'"):
        run_pipeline(RunConfig.toy(output_dir=str(out)), stages='trian')
    assert not out.exists()

def test_old_names_still_importable():
    import rlvr_nb.pipeline as P
    with pytest.warns(DeprecationWarning, match='is now rebuild_report'):
        from rlvr_nb.pipeline import report
    assert report is P.rebuild_report
    with pytest.warns(DeprecationWarning): assert P.World is P.RunResources and P.oracle_noise is P.parse_oracle_spec

def test_yaml_round_trip(tmp_path):
    for c in (RunConfig.toy(), RunConfig.paper()):
        assert RunConfig.from_yaml(c.save(tmp_path / 'c.yaml')) == c
    (tmp_path / 'p.yaml').write_text('preset: paper\ntrain:\n  estimator: rloo\n')
    c = RunConfig.from_yaml(tmp_path / 'p.yaml')
    assert (c.train.estimator, c.train.learning_rate, c.models.policy) == ('rloo', 5e-7, 'Qwen/Qwen2.5-7B')
    check_config(c, cuda=True)

def test_local_data_edited_in_place_reruns_the_stages_that_read_it(tmp_path):
    "A run on local data files; the test file edited in place reruns the evaluation (not the policy), the train file the policy too; the report shows the new questions."
    from rlvr_nb.cli import main
    from rlvr_nb.toy import make_toy_dataset
    import pandas as pd
    torch.set_num_threads(1)
    train, test = tmp_path / 'train.jsonl', tmp_path / 'test.jsonl'
    write = lambda p, rows: p.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    write(train, make_toy_dataset(16, seed=0, split='train').to_list())
    write(test, make_toy_dataset(8, seed=0, split='test').to_list())
    out = tmp_path / 'run'
    args = ['run', '--quiet', '--output_dir', str(out), '--set', f'models.policy={tiny_policy(tmp_path / "tiny_policy")}', f'data.train={train}',
            f'data.test={test}', 'data.n_explore=8', 'data.n_train=8', 'data.n_test=8', 'train.rewards=[rule_binary]', 'models.judges=[]',
            'train.max_steps=1', 'train.per_device_train_batch_size=8', 'train.max_completion_length=8', 'evaluate.max_new_tokens=8',
            'evaluate.baseline=false', 'train.monitor_grader=false']
    assert main(args) == 0
    done = lambda: {s: stage_done(out, s)['finished'] for s in ('train/rule_binary', 'evaluate', 'report')}
    first = done()
    assert main(args) == 0 and done() == first                     # nothing changed: every stage skipped
    new_test = make_toy_dataset(8, seed=1, split='test').to_list()
    write(test, new_test)                                          # edited in place: other questions
    assert main(args) == 0
    second = done()
    assert second['train/rule_binary'] == first['train/rule_binary']                          # the policy does not read data.test
    assert second['evaluate'] > first['evaluate'] and second['report'] > first['report']
    graded = pd.read_parquet(out / 'evaluate' / 'rule_binary.parquet')
    assert list(graded['question']) == [r['question'] for r in new_test]                     # the new questions are the ones evaluated
    rows = make_toy_dataset(16, seed=2, split='train').to_list()
    write(train, rows)
    assert main(args) == 0
    third = done()
    assert third['train/rule_binary'] > second['train/rule_binary'] and third['evaluate'] > second['evaluate']


def test_stopped_training_stage_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    "A training stage that stops after step 2 of 4 (here: its reward raises) resumes from its checkpoint; steps 1-2 are not redone."
    import rlvr_nb.pipeline as P
    out = tmp_path / 'run'
    cfg = tiny_config(out); cfg.train.rewards = ['rule_binary']; cfg.train.max_steps = 4
    calls = {'n': 0, 'fail_at': 3}
    real = P.make_reward_func
    def counting(*a, **kw):
        f = real(*a, **kw)
        if kw.get('name') != 'rule_binary': return f
        def g(*x, **y):
            calls['n'] += 1
            if calls['n'] == calls['fail_at']: raise RuntimeError('stopped in the middle of training')
            return f(*x, **y)
        g.__name__ = f.__name__
        return g
    monkeypatch.setattr(P, 'make_reward_func', counting)
    with pytest.raises(StageError, match='stopped in the middle'):
        run_pipeline(cfg, progress=False, verbose=False)
    assert [p.name for p in out.glob('.work/train-rule_binary-*/checkpoint-*')] == ['checkpoint-2']   # kept through the failure
    calls.update(n=0, fail_at=None)
    run_pipeline(cfg, progress=False, verbose=False)
    assert calls['n'] == 2                                            # steps 3 and 4 only
    assert stage_done(out, 'train/rule_binary')['summary']['steps'] == 4


def test_resumed_exploration_is_said_in_the_report(tmp_path, monkeypatch):
    "Exploration stopped by its teacher resumes from its last checkpoint; the report says the later verdicts were drawn after a resume."
    import rlvr_nb.pipeline as P
    out = tmp_path / 'run'
    cfg = tiny_config(out); cfg.models.judges = []; cfg.explore.max_steps = 8; cfg.train.rewards = ['student_soft']   # a student: STEP 1 runs
    calls = {'n': 0, 'fail_at': 5}                                        # the teacher's 5th call: step 5 of 8
    real = P.ToyOracle.judge
    def judge(self, *a, **kw):
        if self.noise > 0:                                               # the teacher (toy-oracle@0.05), not the grader
            calls['n'] += 1
            if calls['n'] == calls['fail_at']: raise RuntimeError('teacher went away')
        return real(self, *a, **kw)
    monkeypatch.setattr(P.ToyOracle, 'judge', judge)
    with pytest.raises(StageError, match='teacher went away'):
        run_pipeline(cfg, progress=False, verbose=False)
    ckpt = [int(p.name.split('-')[1]) for p in out.glob('.work/explore-*/trainer/checkpoint-*')]
    assert len(ckpt) == 1 and 0 < ckpt[0] < 8, ckpt
    calls.update(n=0, fail_at=None)
    run_pipeline(cfg, progress=False, verbose=False)
    s = stage_done(out, 'explore')['summary']
    assert s['resumed_from_step'] == ckpt[0] and s['samples'] > 0, s
    assert f'Exploration was resumed from its checkpoint at step {ckpt[0]}' in (out / 'report.md').read_text()


def test_served_judges_are_asked_at_the_endpoint_even_for_local_specs(tmp_path):
    "With `backends.judge: openai`, every generative judge of the config is the served model of that name, also a folder spec."
    from rlvr_nb.backends import OpenAIJudge
    from rlvr_nb.pipeline import RunResources
    from rlvr_nb.config import _apply
    folder = tmp_path / 'judge-7b'; folder.mkdir(); (folder / 'config.json').write_text('{}')
    cfg = _apply(RunConfig.toy(), {'backends.judge': 'openai', 'backends.judge_base_url': 'http://127.0.0.1:9/v1'})
    res = RunResources(cfg)
    for spec in (str(folder), 'smollm2-135m-instruct', 'Qwen/Qwen2.5-72B-Instruct'):
        j = res.judge(spec)
        assert isinstance(j.engine, OpenAIJudge) and j.engine.model == spec and j.engine.base_url.startswith('http://127.0.0.1:9')
    assert res.judge('toy-oracle@0.05').name.startswith('toy-oracle')         # not a model: in process
