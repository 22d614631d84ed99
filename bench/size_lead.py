"""Does one epoch of training overrate small architectures? The size lead of issue 27, tested on fresh truth.

Over the claim seeds of issue 27 the searches' picks that retrained worst were the smallest (RESULTS, "A lead"), but
the cifar ground truth (37-48 M MACs) has no row below 37 M, so the finalist round's one-epoch score (``short``) was
never checked against retraining there. This script reads ground-truth files with the ``short`` scores of their
architectures (``glit rank --evaluator short --json``) in two groups:

- ``--calib``: the architectures the score was already measured on (the 24 and the 16, 37-48 M);
- ``--test``: fresh ones below 37 M (``glit truth cifar --max-macs 37M --sample uniform --sample-seed 7``).

and prints, per group, the seed-0 retrained top-1 and the one-epoch score, then:

- **level**: test − calib of the mean retrained top-1 and of the mean score (Welch's t-test, two-sided, scipy);
- **calibration**: the least-squares line of retrained top-1 on the score over ``--calib``, and the test group's mean
  residual from it: below 0 means one epoch promises the small architectures more than they retrain to (they are
  overrated). The interval resamples both groups (scipy's bootstrap, 95%, percentile), refitting the line each time.
- Kendall τ of the score with the retrained top-1 over both groups, and of MACs with it.

Seed 0 of every truth file is used, so that every row is one retraining with the same seed (the 24 also have seed 1
on 8 rows; leaving it out keeps the groups alike).

    python bench/size_lead.py \\
        --calib bench/rank/cifar-evaluators.json:short1:bench/truth/cifar.jsonl \\
                bench/rank/cifar-confirm-evaluators.json:short:bench/truth/cifar-confirm.jsonl \\
        --test bench/rank/cifar-small.json:short:bench/truth/cifar-small.jsonl
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy import stats

from glit.cost import cost
from glit.health.metrics import read_truth
from glit.space import Arch


def load(spec: str) -> list[tuple[float, float, float]]:
    """``RANK_JSON:EVALUATOR:TRUTH_JSONL`` -> (MACs in M, score, seed-0 top-1) per scored architecture."""
    path, name, truth = spec.split(":")
    result = json.load(open(path))
    result = result.get(name, result)  # a file of several evaluators (keyed by name), or one glit rank --json
    seed0 = {Arch.from_dict(r["arch"]): r["top1"] for r in read_truth(truth) if r["seed"] == 0}
    rows = []
    for pair in result["pairs"]:
        arch = Arch.from_dict(pair["arch"])
        if arch in seed0:
            rows.append((cost(arch).macs / 1e6, pair["score"], seed0[arch]))
    return rows


def line(calib: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line of retrained top-1 on the score."""
    slope, intercept = np.polyfit(calib[:, 1], calib[:, 2], 1)
    return float(slope), float(intercept)


def residuals(fit: tuple[float, float], group: np.ndarray) -> np.ndarray:
    """Each architecture's retrained top-1 minus what the line ``fit`` predicts from its score."""
    slope, intercept = fit
    return group[:, 2] - (slope * group[:, 1] + intercept)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calib", nargs="+", required=True, metavar="RANK:EVALUATOR:TRUTH")
    p.add_argument("--test", nargs="+", required=True, metavar="RANK:EVALUATOR:TRUTH")
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    calib = np.array([row for spec in args.calib for row in load(spec)])
    test = np.array([row for spec in args.test for row in load(spec)])
    print("| group | n | MACs (M) | seed-0 top-1, mean ± std | one-epoch score, mean ± std |")
    print("|---|---:|---|---:|---:|")
    for name, g in (("calib", calib), ("test", test)):
        print(f"| {name} | {len(g)} | {g[:, 0].min():.1f}-{g[:, 0].max():.1f} | "
              f"{g[:, 2].mean():.2f} ± {g[:, 2].std(ddof=1):.2f} | {g[:, 1].mean():.2f} ± {g[:, 1].std(ddof=1):.2f} |")
    for col, what in ((2, "retrained top-1"), (1, "one-epoch score")):
        t = stats.ttest_ind(test[:, col], calib[:, col], equal_var=False)
        gap = test[:, col].mean() - calib[:, col].mean()
        print(f"level, {what}: test - calib {gap:+.2f} (Welch p = {t.pvalue:.3f})")
    fit = line(calib)
    res = residuals(fit, test)
    boot = stats.bootstrap((np.arange(len(calib)), np.arange(len(test))),  # both groups resampled, the line refitted
                           lambda i, j: residuals(line(calib[i.astype(int)]), test[j.astype(int)]).mean(),
                           vectorized=False, paired=False, n_resamples=args.resamples, method="percentile",
                           rng=np.random.default_rng(args.seed))
    lo, hi = boot.confidence_interval
    print(f"calibration line over calib: top-1 = {fit[0]:.3f} x score + {fit[1]:.2f}; test's mean residual "
          f"{res.mean():+.2f} (95% CI {lo:+.2f} to {hi:+.2f}); per architecture: "
          + ", ".join(f"{r:+.2f}" for r in res))
    both = np.vstack([calib, test])
    for col, what in ((1, "score"), (0, "MACs")):
        tau = stats.kendalltau(both[:, col], both[:, 2])
        print(f"Kendall tau ({what}, top-1) over both groups: {tau.statistic:+.2f} "
              f"(p = {tau.pvalue:.3f}, n = {len(both)})")


if __name__ == "__main__":
    main()
