#!/bin/bash
# The GPU checks of issue 14 on a lent device, within 8 minutes: bench/gpu.py with a time limit.
#   bench/gpu.sh                  # synthetic 224-px data for the short glit run
#   bench/gpu.sh data/some-tree   # or a carried ImageFolder tree
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 480 "$PY" bench/gpu.py ${1:+--data "$1"}
