"""Are a claim seed's finalists better or worse than uniform draws, by the round's own evaluator? (issue 27)

A finalist round can only pick among what the search hands it. This compares the ``short-tse`` scores of a claim
seed's finalists (``summary.json``'s ``finalists``: the hierarchy's round and random search's, each the supernet's
favourites) with those of ground-truth architectures drawn uniformly under a budget, scored the same way on the
same seed's supernet folder (its config, data and split; the score uses no supernet weights):

    glit rank --supernet runs/cifar-f14/1-supernet --truth bench/truth/cifar-small.jsonl --evaluator short --json \\
        > bench/rank/cifar-small-seed14.json
    python bench/pool_tse.py bench/claims/cifar/seed14 bench/rank/cifar-small-seed14.json [more rank files]

For each round it prints its finalists' scores, the share of truth architectures each one beats, and a one-sided
Mann-Whitney U test (scipy) of "the finalists score lower than the uniform draws". It also prints Kendall tau of
the truth's scores against their retrained top-1, so the scale is known to matter on this seed, and the global heads
of the draws and of each finalist, with Kendall tau of the draws' scores against them (the supernet's known bias).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from finalist_round import scores_by_arch  # a sibling benchmark


def global_heads(arch: dict) -> int:
    """The total of global heads over an architecture's blocks (its JSON form)."""
    return sum(block["num_global_heads"] for block in arch["blocks"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seed_dir", help="a claim seed's folder (its summary.json), e.g. bench/claims/cifar/seed14")
    ap.add_argument("rank", nargs="+", help="glit rank --evaluator short --json on the same seed's supernet folder "
                    "(several files are pooled)")
    args = ap.parse_args()
    summary = json.loads((Path(args.seed_dir) / "summary.json").read_text())
    truth = {arch: pair for file in args.rank for arch, pair in scores_by_arch(file, tse=True).items()}
    tse = np.array([s for s, _ in truth.values()])
    top1 = np.array([t for _, t in truth.values()])
    heads = np.array([global_heads(json.loads(arch)) for arch in truth])
    tau, by_heads = stats.kendalltau(tse, top1), stats.kendalltau(tse, heads)
    print(f"truth: {len(tse)} architectures, short-tse {tse.min():.3f} to {tse.max():.3f} (median "
          f"{np.median(tse):.3f}); Kendall tau against retrained top-1 {tau.statistic:+.2f} (p = {tau.pvalue:.2g})")
    print(f"  global heads {heads.min()}-{heads.max()} (mean {heads.mean():.1f}); Kendall tau of short-tse against "
          f"them {by_heads.statistic:+.2f} (p = {by_heads.pvalue:.2g})")
    for arm, round_ in summary["finalists"].items():
        if round_.get("evaluator") != "short-tse":
            print(f"{arm}: the round used {round_.get('evaluator')}, not short-tse; skipped")
            continue
        scores = np.array([f["score"] for f in round_["finalists"]])
        won = next(i for i, f in enumerate(round_["finalists"]) if f["arch"] == summary[arm]["arch"])  # retrained
        beats = [float(np.mean(tse < s)) for s in scores]
        u = stats.mannwhitneyu(scores, tse, alternative="less")
        print(f"{arm}: {len(scores)} finalists, short-tse {scores.min():.3f} to {scores.max():.3f} (median "
              f"{np.median(scores):.3f}); winner {scores[won]:.3f}, above {beats[won]:.0%} of the truth")
        print(f"  share of the truth each finalist beats: {', '.join(f'{b:.0%}' for b in beats)}; "
              f"finalists below the truth (Mann-Whitney, one-sided): p = {u.pvalue:.2g}")
        counts = ", ".join(str(global_heads(f["arch"])) for f in round_["finalists"])
        print(f"  global heads of each finalist: {counts}")


if __name__ == "__main__":
    main()
