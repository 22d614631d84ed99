"""What a ``truth.jsonl`` holds: one row per architecture (stratum, global heads per block, MACs, top-1 per seed),
the seed-to-seed differences, and the machine time it took.

    python bench/truth_summary.py bench/truth/cifar.jsonl
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from glit.health.metrics import group, noise_ceiling, read_truth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("truth")
    args = p.parse_args()
    rows = read_truth(args.truth)
    meta = {}
    for r in rows:
        meta.setdefault(r.get("index"), r)
    seeds = sorted({r["seed"] for r in rows})
    print(f"| index | stratum | global heads | MACs (M) | {' | '.join(f'seed {s}' for s in seeds)} |")
    print(f"|---:|---|---|---:|{'---:|' * len(seeds)}")
    by_arch = defaultdict(dict)
    for r in rows:
        by_arch[r.get("index")][r["seed"]] = r["top1"]
    for index in sorted(by_arch, key=lambda i: (i is None, i)):
        r = meta[index]
        heads = [b["num_global_heads"] for b in r["arch"]["blocks"]]
        cells = " | ".join(f"{by_arch[index][s]:.2f}" if s in by_arch[index] else "" for s in seeds)
        print(f"| {index} | {r.get('stratum', '')} | {''.join(map(str, heads))} | {r['macs'] / 1e6:.2f} | {cells} |")
    hours = sum(r.get("train_seconds", 0) for r in rows) / 3600
    per_seed = ", ".join(f"seed {s}: {sum(r['seed'] == s for r in rows)}" for s in seeds)
    print(f"\n{len(rows)} trainings of {len(by_arch)} architectures ({per_seed}); {hours:.1f} h of training time "
          "in all (the sum of train_seconds, one worker each)")
    both = [v for v in by_arch.values() if 0 in v and 1 in v]
    if both:
        diffs = [abs(v[0] - v[1]) for v in both]
        ceiling = noise_ceiling(group(rows, args.truth))
        print(f"seed 0 vs seed 1 on {len(both)} architectures: |difference| mean {statistics.fmean(diffs):.2f}, "
              f"max {max(diffs):.2f} points; noise ceiling Kendall tau {ceiling['noise_ceiling_tau']}")
    top1 = [r["top1"] for r in rows if r["seed"] == seeds[0]]
    print(f"seed {seeds[0]} top-1: mean {statistics.fmean(top1):.2f}, range {min(top1):.2f}-{max(top1):.2f}")


if __name__ == "__main__":
    main()
