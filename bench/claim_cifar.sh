#!/usr/bin/env bash
# The claim over pipeline seeds (issue 27): `glit run cifar` for each seed, `glit ablate cifar --study search` in
# the same folder (the one-level row), then `glit compare` over the seeds.
#
#   bench/claim_cifar.sh DATA RUNS SEED...     e.g. bench/claim_cifar.sh data/cifar10-jpg runs 0 1 2 3 4 5
#
# Each run goes to RUNS/cifar-fS with the default config (only the seed set), so every stage is computed by the
# command. Run it again to continue: every stage resumes, and a finished one is never redone. Once a seed's run and
# its ablation are finished, its small files (config, summary, times, run.json, the ablation table: figures only,
# no images) are copied to bench/claims/cifar/seedS, and bench/claims/cifar.json is `glit compare` over every seed
# copied so far, so the claim can be checked again from the repository alone:
#   glit compare bench/claims/cifar/seed*
# GLIT (default: glit) names the command, e.g. GLIT="env PYTHONPATH=/pinned/src .venv/bin/glit" to run a worktree
# pinned to the code being measured.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bench/claim_cifar.sh DATA RUNS SEED..." >&2
    exit 2
fi
data=$1 runs=$2
shift 2
glit=${GLIT:-glit}
here=$(cd "$(dirname "$0")" && pwd)
for seed in "$@"; do
    out=$runs/cifar-f$seed
    $glit run cifar --data "$data" --out "$out" --set seed="$seed"
    $glit ablate cifar --study search --data "$data" --out "$out" --set seed="$seed"
    keep=$here/claims/cifar/seed$seed
    mkdir -p "$keep"
    cp "$out"/{config.yaml,summary.json,times.json,run.json,ablation-search.json} "$keep"/
done
$glit compare "$here"/claims/cifar/seed* --json > "$here/claims/cifar.json"
$glit compare "$here"/claims/cifar/seed*
