"""Is the level-1 family a weaker pool for a finalist round? Measured on the ground truth (issue 27).

The hierarchy's finalist round trains K distributions at the level-1 details (the preset's level-1 space,
``glit.presets.space_preset(PRESET, 1)``: qkv_ratio 1, mlp_ratio 4, conv_ratio 1, the middle kernel); random
search's round trains K candidates of the whole space. This script splits the truth architectures that an evaluator
file scored into those two families and prints, per family:

- the mean retrained top-1 (what a uniformly random member gets), with its std;
- the expected top-1 of a round's pick: the member with the best evaluator score in a K-subset, averaged exactly over
  every K-subset (``glit.health.metrics.expected_pick``), and that subset's expected best;
- whole − level-1 for both, with a 95% bootstrap interval (the two families resampled independently).

    python bench/round_families.py bench/rank/cifar-evaluators.json short1 \
        bench/rank/cifar-confirm-evaluators.json short [--mixes]

Each (FILE, EVALUATOR) pair adds that file's scored architectures to the pools. Scores from different files are
compared only within a K-subset of one file, never across files (the round's evaluator is the same, but keeping the
files apart costs nothing and avoids mixing two evaluation runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
from math import comb

import numpy as np
from scipy import stats

from glit.health.metrics import expected_pick, is_mix
from glit.presets import space_preset
from glit.space import Arch


def pick(pools: list[tuple[list[float], list[float]]], k: int) -> tuple[float, float]:
    """The expected (pick, best) of a K-round, pooled over files, each file's subsets weighted by their number."""
    weights = [comb(len(s), k) for s, _ in pools if len(s) >= k]
    figures = [expected_pick(s, t, k) for s, t in pools if len(s) >= k]
    total = sum(weights)
    return (sum(w * f[0] for w, f in zip(weights, figures)) / total,
            sum(w * f[1] for w, f in zip(weights, figures)) / total)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="FILE EVALUATOR [FILE EVALUATOR ...]")
    p.add_argument("--k", type=int, default=6, help="the round's size (the cifar preset's search.finalists)")
    p.add_argument("--preset", default="cifar", help="the space preset whose level-1 space defines the family")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--mixes", action="store_true",
                   help="only architectures with both global and local heads (drops the all-global DeiT-style and "
                        "the all-local designs, which are level-1 members sampled on purpose, not at random)")
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give FILE EVALUATOR pairs")
    level1 = space_preset(args.preset, 1)  # the level-1 members: every detail gene at its level-1 value
    families: dict[str, list[tuple[list[float], list[float]]]] = {"level-1": [], "whole": []}
    for path, name in zip(args.pairs[::2], args.pairs[1::2]):
        split = {"level-1": ([], []), "whole": ([], [])}
        for pair in json.load(open(path))[name]["pairs"]:
            arch = Arch.from_dict(pair["arch"])
            if args.mixes and not is_mix(arch):
                continue
            family = "level-1" if level1.contains(arch) else "whole"
            split[family][0].append(pair["score"])
            split[family][1].append(pair["truth_top1"])
        for family, pool in split.items():
            if pool[0]:
                families[family].append(pool)

    print(f"| family | architectures | mean top-1 (std) | round of {args.k}: pick | best of the {args.k} |")
    print("|---|---:|---:|---:|---:|")
    figures = {}
    for family, pools in families.items():
        truth = [t for _, ts in pools for t in ts]
        figures[family] = pick(pools, args.k)
        print(f"| {family} | {len(truth)} | {statistics.fmean(truth):.2f} ({statistics.stdev(truth):.2f}) | "
              f"{figures[family][0]:.2f} | {figures[family][1]:.2f} |")

    def flat(family):
        return [(i, j) for i, (s, _) in enumerate(families[family]) for j in range(len(s))]

    def resampled(family, idx):
        pools = [([], []) for _ in families[family]]
        for i, j in idx:
            pools[i][0].append(families[family][i][0][j])
            pools[i][1].append(families[family][i][1][j])
        return [pool for pool in pools if pool[0]]

    whole, level1 = flat("whole"), flat("level-1")

    def difference(a, b):
        w, l1 = resampled("whole", [whole[int(i)] for i in a]), resampled("level-1", [level1[int(i)] for i in b])
        if max(len(s) for s, _ in w) < args.k or max(len(s) for s, _ in l1) < args.k:
            return np.nan, np.nan
        mean = statistics.fmean(t for _, ts in w for t in ts) - statistics.fmean(t for _, ts in l1 for t in ts)
        return mean, pick(w, args.k)[0] - pick(l1, args.k)[0]

    mean, round_ = difference(range(len(whole)), range(len(level1)))
    boot = stats.bootstrap((np.arange(len(whole)), np.arange(len(level1))), difference, vectorized=False,
                           paired=False, n_resamples=args.resamples, method="percentile",
                           rng=np.random.default_rng(0))
    lo, hi = boot.confidence_interval
    w_truth = [t for _, ts in families["whole"] for t in ts]
    l_truth = [t for _, ts in families["level-1"] for t in ts]
    welch = stats.ttest_ind(w_truth, l_truth, equal_var=False, alternative="greater")
    print(f"\nwhole − level-1, mean top-1: {mean:+.2f} (95% CI {lo[0]:+.2f} to {hi[0]:+.2f}; Welch one-sided "
          f"p = {welch.pvalue:.3g})")
    print(f"whole − level-1, the round's pick: {round_:+.2f} (95% CI {lo[1]:+.2f} to {hi[1]:+.2f})")


if __name__ == "__main__":
    main()
