#!/usr/bin/env bash
# GPU check for rlvr_nb, for a CUDA machine with no network (issue 8.4). Prepare the wheels first, here:
#   bash bench/gpu_wheels.sh
# then on the device (carry .whl):  bash bench/gpu_check.sh
# Runs in < 5 minutes: device name, bf16 matmul peak, the judge benchmark at 7B shape with the MFU of its forward,
# a few RLVRTrainer steps at 0.5B shape, and a short table at the end. Writes logs to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
OUTDIR=${OUT:-/tmp/gpu_check}; mkdir -p "$OUTDIR"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 - <<'PY' | tee "$OUTDIR/device.txt"
import torch, time
assert torch.cuda.is_available(), 'no CUDA device'
print('device', torch.cuda.get_device_name(), '| torch', torch.__version__)
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ b
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 10
print(f'matmul_tflops {2 * 8192**3 / dt / 1e12:.1f}')
PY
timeout 150 python3 bench/judge.py --gpu --json --repeats 5 2>&1 | tee "$OUTDIR/judge.log"
timeout 120 python3 bench/rl_step.py --device cuda --shape 0.5b --steps 4 2>&1 | tee "$OUTDIR/rl_step.log"
python3 - "$OUTDIR" <<'PY'
import json, re, sys
from pathlib import Path
d = Path(sys.argv[1])
dev = (d / 'device.txt').read_text()
peak = float(re.search(r'matmul_tflops ([\d.]+)', dev).group(1))
print('\n== rlvr_nb GPU check ==')
print(dev.splitlines()[0]); print(f'bf16 matmul 8192^3: {peak:.0f} TFLOP/s')
try:
    j = json.loads([l for l in (d / 'judge.log').read_text().splitlines() if l.startswith('{')][-1])
    raw = next(r for r in j['rows'] if r['n'] == 4 and r['method'] == 'raw')
    # Qwen2.5-7B shape: 28 layers x (2*3584^2 + 2*3584*512 + 3*3584*18944) = 6.525e9 non-embedding weights
    tokens = j['prompts'] * j['mean_prompt_tokens']
    mfu = 2 * 6.525e9 * tokens / raw['median_s'] / (peak * 1e12)
    print(f"judge 7B bf16: verifier/raw {j['verifier_vs_raw']} | generate/raw {j['generate_vs_raw']} | prefix speedup n=4 "
          f"{j['prefix_speedup_n4']}x n=8 {j['prefix_speedup_n8']}x | raw forward {j['prompts'] / raw['median_s']:.0f} judgments/s, "
          f"MFU {mfu:.1%} of the measured matmul peak")
except Exception as e: print('judge benchmark: no result', repr(e))
try:
    s = json.loads([l for l in (d / 'rl_step.log').read_text().splitlines() if l.startswith('RL_STEP ')][-1][8:])
    print('RLVRTrainer 0.5B bf16:', json.dumps(s))
except Exception as e: print('rl_step: no result', repr(e))
PY
