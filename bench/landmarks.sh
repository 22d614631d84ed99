#!/usr/bin/env bash
# Does landmark regularisation (supernet.landmarks) make the level-1 supernet rank fresh architectures?
#
#   bench/landmarks.sh RUN_DIR OUT [KEY=VALUE...]   e.g. bench/landmarks.sh runs/cifar-f16 runs/landmarks-f16
#
# Trains the supernet of RUN_DIR's stage 1 again (its config.yaml, over the whole space as `glit run`'s default
# level-1 supernet is), with the 24 architectures of bench/truth/cifar.jsonl as landmarks and any extra --set
# KEY=VALUE, then ranks the 16 of bench/truth/cifar-confirm.jsonl (uniform draws under the budget, never
# landmarks: the confirmation) and the 24 (the landmarks themselves: only a check that the ranking was learnt) on
# it and on RUN_DIR's own supernet (the control). Rank files go to bench/rank/: TRUTH-NAME.json for OUT's last
# part NAME, and TRUTH-seedS-supernet.json for the control of RUNS/cifar-fS (kept when already there).
# Run it again to continue: the training resumes. About 10 min for the supernet (cifar, 2 cores) and 2-3 min per
# ranking.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bench/landmarks.sh RUN_DIR OUT [KEY=VALUE...]" >&2
    exit 2
fi
run=$1 out=$2
shift 2
glit=${GLIT:-glit}
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$out")
control=$(basename "$run")
[[ $control =~ ^cifar-f([0-9]+)$ ]] && control=seed${BASH_REMATCH[1]}  # the name of the claim seeds' rank files
sets=(--set "supernet.landmarks=$here/truth/cifar.jsonl")
for kv in "$@"; do sets+=(--set "$kv"); done
resume=()
[ -f "$out/checkpoint.pt" ] && resume=(--resume)
$glit train-supernet --config "$run/1-supernet/config.yaml" --level 2 "${sets[@]}" --out "$out" "${resume[@]}"
for truth in cifar-confirm cifar; do
    $glit rank --supernet "$out" --truth "$here/truth/$truth.jsonl" --json > "$here/rank/$truth-$name.json"
    [ -f "$here/rank/$truth-$control-supernet.json" ] ||
        $glit rank --supernet "$run/1-supernet" --truth "$here/truth/$truth.jsonl" --json \
            > "$here/rank/$truth-$control-supernet.json"
done
python - "$here/rank" "$name" "$control" <<'EOF'
import json, sys
rank, name, control = sys.argv[1:]
print(f"{'truth':14s} {'supernet':28s} {'Kendall tau (p)':16s} {'local bias':>10s} {'regret':>7s}")
for truth in ("cifar-confirm", "cifar"):
    for label, file in ((f"{control} (control)", f"{truth}-{control}-supernet"), (name, f"{truth}-{name}")):
        r = json.load(open(f"{rank}/{file}.json"))
        print(f"{truth:14s} {label:28s} {r['kendall_tau']:+.2f} ({r['kendall_p']:.2g}){'':6s} "
              f"{r['local_bias']:+10.2f} {r['regret']:+7.2f}")
EOF
