"""``short`` against ``short-tse`` over every ground-truth file scored, pooled (issue 27).

Both scores come from the same one-epoch training of each architecture (``glit.scoring.short``): its top-1 on the
search split, and minus its summed training loss (Ru et al., NeurIPS 2021). Each file is one
``glit rank --evaluator short --json`` result, which keeps both per architecture (``pairs`` and ``tse.pairs``). The
scores of different files are comparable: the evaluator uses no supernet weights, and with the same config, data
and seed it gives the same score (RESULTS, "The size lead tested on fresh truth"). For each evaluator this prints
Kendall τ over the pooled architectures and the selection test over subsets of ``--subset``
(``glit.health.metrics.selection``: the pick's true top-1 minus a random pick's, and minus the subset's best,
with bootstrap 95% intervals).

    python bench/short_vs_tse.py bench/rank/cifar-short-tse.json bench/rank/cifar-confirm-short-tse.json \\
        bench/rank/cifar-small.json
"""

from __future__ import annotations

import argparse

from scipy import stats

from finalist_round import scores_by_arch  # a sibling benchmark
from glit.health.metrics import selection


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="glit rank --evaluator short --json results")
    p.add_argument("--subset", type=int, default=10)
    p.add_argument("--resamples", type=int, default=2000)
    args = p.parse_args()
    scores = {"short": [], "short-tse": []}
    truth = []
    for path in args.files:  # matched by architecture, not by position
        tse = scores_by_arch(path, tse=True)
        for arch, (score, top1) in scores_by_arch(path).items():
            scores["short"].append(score)
            scores["short-tse"].append(tse[arch][0])
            truth.append(top1)
    print(f"{len(truth)} architectures from {len(args.files)} files; subsets of {args.subset}")
    print("| evaluator | Kendall τ (p) | selection gain (95% CI) | selection regret (95% CI) |")
    print("|---|---:|---|---|")
    for name, s in scores.items():
        tau = stats.kendalltau(s, truth)
        sel = selection(s, truth, args.subset, args.resamples)
        print(f"| `{name}` | {tau.statistic:+.2f} ({tau.pvalue:.2g}) | {sel['gain']:+.2f} ({sel['gain_ci95'][0]:+.2f} "
              f"to {sel['gain_ci95'][1]:+.2f}) | {sel['regret']:+.2f} ({sel['regret_ci95'][0]:+.2f} to "
              f"{sel['regret_ci95'][1]:+.2f}) |")


if __name__ == "__main__":
    main()
