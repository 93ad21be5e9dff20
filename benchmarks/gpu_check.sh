#!/usr/bin/env bash
# The short check a GPU machine runs (each half capped at 5 minutes, nothing downloaded beyond the Python
# packages bin/venv installs): the throughput figures of benchmarks/gpu_check.py, then the
# cifar10 world end to end on its fixture tarball (tests/smoke.py) with compute.device auto
# (CUDA). Figures go to $OUT (an absolute path; default: gpu-check/) as JSON and logs.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${OUT:-$root/gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.csv" || true
timeout 300 ./bin/venv python benchmarks/gpu_check.py --json "$out/figures.json" 2>&1 | tee "$out/figures.log"
ws="$(mktemp -d)"
./bin/venv python -m tests.smoke "$ws" --cifar10 > /dev/null
start=$(date +%s)
(cd "$ws" && ASKSHIFT_VENV="${ASKSHIFT_VENV:-$root/.venv}" timeout 300 ./bin/venv dvc repro > "$out/cifar10-smoke.log" 2>&1) \
  && echo "cifar10 smoke: dvc repro ok in $(( $(date +%s) - start )) s" | tee -a "$out/figures.log" \
  || { echo "cifar10 smoke: FAILED after $(( $(date +%s) - start )) s (see $out/cifar10-smoke.log)" | tee -a "$out/figures.log"; exit 1; }
cp "$ws/results/machine.json" "$out/machine.json" 2>/dev/null || true
