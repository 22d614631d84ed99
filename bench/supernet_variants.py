"""Issue 12's table: supernet variants, each ranked with ``glit rank`` against one ground truth, with its cost.

    python bench/supernet_variants.py --preset cifar --data data/cifar10-jpg --truth bench/truth/cifar.jsonl \
        --out runs/variants --json runs/variants.json            # all variants; or name some: --only whole,paper

Each variant is a ``glit train-supernet`` run (``--level 2``: the whole space, as the cifar default's level-1
supernet and the random baseline's are) with config overrides, into ``OUT/<supernet>/`` (resumed if it exists, so
the script can be stopped and run again), then ``glit rank`` of it, whole-space architectures scored by their own
path and level-1 members by their distribution, as the level-1 search scores them. Variants that differ only in
how they score share one supernet. The cost is the supernet's training time (the sum of its epochs' seconds, on
this machine, whatever else ran): compare variants at about the same cost. Results (pairs included) go to
``--json``, which ``bench/rank_table.py --scores`` can re-judge against a grown truth file.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

# name -> (supernet folder, train-supernet overrides, rank overrides, scoring, level1). Each changes one thing
# against the baseline, at about its cost unless said.
VARIANTS = {
    "whole": ("whole", [], [], "arch", False),  # the baseline: the cifar default's whole-space supernet
    "whole-level1": ("whole", [], [], "arch", True),  # its level-1 members, scored with the level-1 details
    "whole-level1-marginal": ("whole", [], [], "marginal", True),  # ... scored by marginalising the details
    "whole-bn8": ("whole", [], ["search.bn_batches=8"], "arch", False),  # 8 BatchNorm batches instead of 2
    "paper": ("paper", ["search.level2_space=paper"], [], "arch", False),  # the authors' 9 options per block
    "sandwich": ("sandwich", ["supernet.sandwich=1", "supernet.optim.epochs=2"], [], "arch", False),  # ~3x a step
    "split4000": ("split4000", ["data.search_size=4000"], [], "arch", False),  # a 4x larger search split
    "long": ("long", ["supernet.optim.epochs=12"], [], "arch", False),  # twice the cost
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar")
    p.add_argument("--data", help="the ImageFolder tree (none for demo)")
    p.add_argument("--truth", required=True)
    p.add_argument("--out", required=True, help="folder for the supernets")
    p.add_argument("--json", help="write every result (pairs included) here")
    p.add_argument("--only", help="comma-separated variant names (default: all)")
    p.add_argument("--set", action="append", default=[], help="an override for every supernet (e.g. for a test)")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    from glit.recipes.rank import rank

    results = {}
    print("| variant | supernet cost (s) | ranked | Kendall τ | Spearman ρ | precision@5 | regret | noise ceiling τ |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        folder, train_sets, rank_sets, scoring, level1 = VARIANTS[name]
        out = Path(args.out) / folder
        command = [sys.executable, "-m", "glit", "train-supernet", "--preset", args.preset, "--level", "2",
                   "--out", str(out), "--resume", *(["--data", args.data] if args.data else []),
                   *(f"--set={kv}" for kv in [*args.set, *train_sets])]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        cost = sum(json.loads(line)["seconds"] for line in (out / "metrics.jsonl").read_text().splitlines())
        r = rank(out, args.truth, args.data, overrides=rank_sets, level1=level1, progress=False, scoring=scoring)
        results[name] = {**r, "supernet_seconds": cost, "train_overrides": train_sets, "rank_overrides": rank_sets}

        def f(x, fmt="{:.2f}"):
            return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

        print(f"| {name} | {cost:.0f} | {r['n']} | {f(r['kendall_tau'])} | {f(r['spearman_rho'])} | "
              f"{f(r['precision_at_5'], '{:.1f}')} | {f(r['regret'], '{:+.2f}')} | {f(r['noise_ceiling_tau'])} "
              f"({r['noise_ceiling_n']}) |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
