#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels that bench/gpu_check.sh needs on a GPU machine that
# has torch/transformers/peft/accelerate but no network: trl, datasets and their missing dependencies, math-verify
# and fastcore. Saved under .whl/ (ignored by git through .git/info/exclude), carried with the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any"
for spec in trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 math-verify==0.9.0 latex2sympy2_extended==1.11.0 \
            antlr4-python3-runtime==4.13.2 "fastcore==1.14.5"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat -d .whl "$spec"
done
ls -la .whl
