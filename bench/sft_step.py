"""STEP 2 speed on a CPU: TRL's `SFTTrainer` step on verdict rows, with and without `labelled_positions_only`.

    python bench/sft_step.py                  # toy student (the pretrained toy policy + judge tokenizer), 3 rounds
    python bench/sft_step.py --rounds 5 --steps 60 --threads 1

Off Triton devices TRL's fused LM head projects every position and masks the prompt afterwards; a verdict row has
one or two labelled tokens among ~80. `rlvr_nb.distill.train_verifier` therefore scores only the labelled positions
on a CPU (`score_labelled_only=True`, the default). This script times both ways side by side (interleaved rounds,
medians) on the same rows, and checks that both give the same training loss. Clock: process CPU time of the training
loop (`trainer.train`), so neighbours on a shared box distort it less than wall time.
"""
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path

import torch


def rows(n_questions: int):
    "Judged samples in the exploration schema: per question the correct answer and the misconception, judged by ToyOracle."
    from rlvr_nb.toy import ToyOracle, make_toy_dataset, toy_response, toy_world
    w, out = toy_world(), []
    for r in make_toy_dataset(n_questions, seed=7).to_list():
        f = w.find(r['question'])
        for a in (f.answer, f.misconception):
            for form in a.forms[:2]:
                out.append(dict(question=r['question'], reference=r['reference'],
                                response=toy_response(f, form)))
    v = ToyOracle().judge([o['question'] for o in out], [o['response'] for o in out], [o['reference'] for o in out])
    for o, x in zip(out, v): o['verdict'] = x.label
    return out


def one_run(ds, steps: int, fast: bool, workdir: Path):
    from rlvr_nb.distill import train_verifier
    from rlvr_nb.toy.recipes import toy_student
    model, tok = toy_student('policy')
    cpu = {}
    import trl
    real_train = trl.SFTTrainer.train
    def timed_train(self, *a, **k):   # time only the training loop, not tokenisation or saving
        c0, t0 = time.process_time(), time.time()
        try: return real_train(self, *a, **k)
        finally: cpu.update(cpu=time.process_time() - c0, wall=time.time() - t0)
    trl.SFTTrainer.train = timed_train
    try:
        out = train_verifier(model, ds, tokenizer=tok, output_dir=workdir / f"s{int(fast)}", num_train_epochs=1, learning_rate=2e-3, batch_size=32,
                             micro_batch_size=32, max_length=1024, max_steps=steps, verbose=False, score_labelled_only=fast)
    finally:
        trl.SFTTrainer.train = real_train
    meta = json.loads((out / 'train_verifier.json').read_text())
    return cpu['cpu'] / steps * 1e3, cpu['wall'] / steps * 1e3, meta['train_loss']


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--steps', type=int, default=40)
    ap.add_argument('--questions', type=int, default=400)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from rlvr_nb.distill import verdict_sft_dataset
    ds = verdict_sft_dataset(rows(a.questions), verbose=False)
    res = {True: [], False: []}
    with tempfile.TemporaryDirectory() as d:
        one_run(ds, 3, True, Path(d))                                   # warm-up (caches, allocator)
        for _ in range(a.rounds):
            for fast in (False, True):
                res[fast].append(one_run(ds, a.steps, fast, Path(d)))
    med = {f: [statistics.median(x[i] for x in res[f]) for i in range(3)] for f in res}
    print(f"TRL SFTTrainer, toy student, {len(ds)} verdict rows, batch 32, {a.steps} steps x {a.rounds} rounds, "
          f"{a.threads} torch thread(s); medians")
    print("| LM head scores | CPU ms/step | wall ms/step | train loss |")
    print("|---|---|---|---|")
    for f, name in ((False, 'every position (TRL default off Triton)'), (True, 'labelled positions only (ours)')):
        print(f"| {name} | {med[f][0]:.1f} | {med[f][1]:.1f} | {med[f][2]:.5f} |")
    ratio = med[False][0] / med[True][0]
    same = abs(med[False][2] - med[True][2]) <= 1e-4 * abs(med[False][2])
    print(f"speed-up (CPU time) {ratio:.2f}x; same loss: {same}")
    if a.json: print('SFT_STEP', json.dumps({'speedup_cpu': ratio, 'same_loss': same, 'rows': len(ds), 'rounds': a.rounds,
                                             'steps': a.steps, 'median': {str(k): v for k, v in med.items()}}))
    if not same: sys.exit(1)


if __name__ == '__main__':
    main()
