#!/bin/bash
# What one session with a lent GPU runs, in order of value, each part under its own time limit, every result into
# $OUT (the device tool brings that folder back). The CIFAR-10 archive must lie in .gpu-data/ (ignored; carried).
#
#   1. the confirmation ground truth of issue 26: `glit truth cifar --sample uniform --sample-seed 1`, 16
#      architectures, seed 0, the cifar retraining recipe (fp32), one worker process per training on the one GPU;
#      beside it, the first 3 architectures of the committed stratified truth (bench/truth/cifar.jsonl, trained on
#      CPU), to show that a GPU training lands where a CPU one does;
#   2. bench/gpu.py, checks 1-4 (bf16 peak, GLiT-Tiny MFU, supernet/subnet step, scoring/inference), then check 5
#      (a short glit run tiny) with what time is left.
#
# Smoke test on a CPU (tiny settings, figures meaningless):
#   SMOKE=1 OUT=/tmp/gpu-out bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu-out}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
mkdir -p "$OUT"
work=$(mktemp -d)
tar xzf .gpu-data/cifar10-jpg.tar.gz -C "$work"
tree="$work/cifar10-jpg"
if [ -n "${SMOKE:-}" ]; then
  jobs=1; limit=600; archs=2; extra=(--set train.epochs=1 --set data.train_subset=600 --set data.search_size=100)
  gpu=(--quick --device cpu)
else
  jobs=16; limit=280; archs=16; extra=(); gpu=()
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; "$PY" -c "import torch; print(torch.__version__)"; git rev-parse HEAD; } > "$OUT/machine.txt" 2>&1
start=$(date +%s)
timeout "$limit" "$PY" -m glit truth cifar --data "$tree" --out "$work/confirm" --archs "$archs" --seeds 0 --sample uniform \
  --sample-seed 1 --jobs "$jobs" --threads 1 --set data.workers=1 "${extra[@]}" > "$OUT/confirm.log" 2>&1 &
timeout "$limit" "$PY" -m glit truth cifar --data "$tree" --out "$work/calib" --archs "$(( archs < 3 ? archs : 3 ))" --seeds 0 \
  --jobs "$(( jobs < 3 ? jobs : 3 ))" --threads 1 --set data.workers=1 "${extra[@]}" > "$OUT/calib.log" 2>&1 &
wait
echo "truth: $(( $(date +%s) - start )) s" >> "$OUT/machine.txt"
cp "$work/confirm/truth.jsonl" "$OUT/confirm.jsonl" 2>/dev/null
cp "$work/calib/truth.jsonl" "$OUT/calib.jsonl" 2>/dev/null
timeout 160 "$PY" bench/gpu.py --checks 1,2,3,4 "${gpu[@]}" > "$OUT/gpu.log" 2>&1
timeout 115 "$PY" bench/gpu.py --checks 5 "${gpu[@]}" >> "$OUT/gpu.log" 2>&1
echo "all: $(( $(date +%s) - start )) s" >> "$OUT/machine.txt"
rm -rf "$work"
