"""How early does a short training rank? Training-speed estimation over the first part of the run (issue 27).

`short-tse` sums the training losses of one epoch (about 60 CPU s per candidate on the cifar preset), too costly to
score a whole level-1 search. If the sum over the first fraction of the steps ranked nearly as well, a search could
score its candidates by training. ``glit rank --evaluator short --json`` keeps each step's loss in its TSE pairs
(``step_losses``), so one run of trainings gives every prefix:

    glit rank --supernet runs/cifar-f16/1-supernet --truth bench/truth/cifar-confirm.jsonl --evaluator short \\
        --json > bench/rank/cifar-confirm-steps-seed16.json
    python bench/tse_prefix.py bench/rank/cifar-confirm-steps-seed16.json [more rank files] [--subset 8]

For each fraction it prints Kendall tau (scipy) of minus the summed losses of the first steps against retrained
top-1 (then the same for a few windows that skip the epoch's start, as Ru et al.'s TSE-E skips the first epochs),
and the selection test's gain of the pick of ``--subset`` over a random pick (``glit.health.metrics``).
Caveat: a prefix of a one-epoch schedule (warm-up, then cosine decay over the epoch) is not a shorter schedule; the
prefix's learning rates are those of the epoch's start.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from scipy import stats

from glit.health.metrics import selection

FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
WINDOWS = ((1 / 4, 1 / 2), (1 / 2, 1.0), (3 / 4, 1.0))  # parts of the epoch that skip its start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rank", nargs="+", help="glit rank --evaluator short --json results (their TSE pairs are pooled)")
    ap.add_argument("--subset", type=int, default=8, help="the selection test's subset size (default 8)")
    args = ap.parse_args()
    pairs = []
    for file in args.rank:
        these = json.load(open(file))["tse"]["pairs"]
        if any("step_losses" not in p for p in these):
            print(f"{file}: its TSE pairs hold no step_losses; rank again with a glit that keeps them (the version "
                  "that added bench/tse_prefix.py, or later)", file=sys.stderr)
            sys.exit(2)
        pairs += these
    steps = min(len(p["step_losses"]) for p in pairs)
    truth = [p["truth_top1"] for p in pairs]
    print(f"{len(pairs)} architectures, {steps} steps each")
    print("part of the epoch  steps    Kendall tau (p)    selection gain (95% CI)")
    for start, end in [(0, f) for f in FRACTIONS] + list(WINDOWS):
        first, last = math.floor(start * steps), max(1, math.ceil(end * steps))
        tse = [-sum(p["step_losses"][first:last]) for p in pairs]
        tau = stats.kendalltau(tse, truth)
        sel = selection(tse, truth, args.subset)
        lo, hi = sel["gain_ci95"]
        print(f"{start:6.3f} to {end:5.3f}  {first + 1:3d}-{last:<3d}  {tau.statistic:+.2f} ({tau.pvalue:.2g})      "
              f"{sel['gain']:+.2f} ({lo:+.2f} to {hi:+.2f})")


if __name__ == "__main__":
    main()
