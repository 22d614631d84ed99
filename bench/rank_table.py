"""The supernet-health table of ``bench/RESULTS.md``: ``glit rank`` for several supernets against one truth file,
with two diagnostics of what limits each ranking.

    python bench/rank_table.py --truth bench/truth/cifar.jsonl --data data/cifar10-jpg \
        fixed=runs/sn-fixed whole=runs/sn-whole whole-level1=runs/sn-whole:level1 random=runs/sn-random

Each positional argument is ``NAME=DIR`` (a supernet folder), with ``:level1`` to rank only its level-1 members as
the level-1 search does. ``--scores FILE`` instead re-judges the scores saved by an earlier ``--json`` against the
(grown) truth file, with no supernet and no data: the scores depend on the supernet alone, so a table can be brought
up to date after more ground truth is trained (an architecture the saved scores lack is counted as skipped).

    python bench/rank_table.py --truth bench/truth/cifar.jsonl --scores bench/rank/cifar-supernets.json

Besides the figures of ``glit rank`` it prints, per supernet:

- ``split SE``: the binomial standard error of one score on the search split at the mean score, against ``score
  spread``, the standard deviation of the scores over the ranked architectures: when the two are alike, the
  search split's noise alone can reorder the ranking;
- ``tau mixes`` and ``local bias`` (``glit.health.metrics``): how well the supernet orders the plateau of mixes the
  search chooses from, and whether its scores follow the architectures' local computation as retraining does.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from glit.health.metrics import group, read_truth, selection
from glit.recipes.rank import judge, rank
from glit.space import Arch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--truth", required=True)
    p.add_argument("--data", help="the supernets' ImageFolder tree, if it has moved")
    p.add_argument("--json", help="also write every result (pairs included) to this file")
    p.add_argument("--scores", help="re-judge the scores of an earlier --json file instead of scoring supernets")
    p.add_argument("--selection", type=int, metavar="M", help="also print the selection test over subsets of M")
    p.add_argument("supernets", nargs="*", metavar="NAME=DIR[:level1]")
    args = p.parse_args()
    if bool(args.scores) == bool(args.supernets):
        p.error("give either supernets or --scores")
    results = {}
    print("| supernet | ranked | skipped | Kendall τ (p) | Spearman ρ | precision@5 | regret | τ of MACs | τ mixes "
          "| local bias | score spread / split SE | noise ceiling τ (n) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in (rejudged(args.scores, args.truth) if args.scores else scored(args.supernets, args)):
        results[name] = r
        scores = [pair["score"] for pair in r["pairs"]]
        mean = statistics.fmean(scores) / 100
        se = 100 * math.sqrt(mean * (1 - mean) / r["search_size"]) if r.get("search_size") else math.nan
        spread = statistics.stdev(scores) if len(scores) > 1 else math.nan

        def f(x, fmt="{:.2f}"):
            return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

        print(f"| {name} | {r['n']} | {r['skipped']} | {f(r['kendall_tau'])} ({f(r['kendall_p'], '{:.2g}')}) | "
              f"{f(r['spearman_rho'])} | {f(r['precision_at_5'], '{:.1f}')} | {f(r['regret'], '{:+.2f}')} | "
              f"{f(r['macs_kendall_tau'])} | {f(r['kendall_tau_mixes'])} ({r['n_mixes']}) | "
              f"{f(r['local_bias'], '{:+.2f}')} | {spread:.2f} / {f(se)} | "
              f"{f(r['noise_ceiling_tau'])} ({r['noise_ceiling_n']}) |", flush=True)
        if args.selection:
            sel = selection([p["score"] for p in r["pairs"]], [p["truth_top1"] for p in r["pairs"]], args.selection)
            r["selection"] = sel
            print(f"|   selection, subsets of {sel['subset']}: gain {sel['gain']:+.2f} (CI {sel['gain_ci95'][0]:+.2f} "
                  f"to {sel['gain_ci95'][1]:+.2f}), regret {sel['regret']:+.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


def scored(specs: list[str], args):
    for spec in specs:
        name, _, folder = spec.partition("=")
        folder, _, level = folder.partition(":")
        yield name, rank(folder, args.truth, args.data, level1=level == "level1", progress=False)


def rejudged(scores_file: str, truth_file: str):
    truths = group(read_truth(truth_file), truth_file)
    saved = json.loads(Path(scores_file).read_text())
    runs = [(f"{name}-s{r['seed']}" if isinstance(rs, list) else name, r)  # supernet_variants.py: a list per variant
            for name, rs in saved.items() for r in (rs if isinstance(rs, list) else [rs])]
    for name, old in runs:
        score = {Arch.from_dict(p["arch"]): p["score"] for p in old["pairs"]}
        held = [t for t in truths if t.arch in score]
        r = judge(held, [score[t.arch] for t in held], truths)
        yield name, {**old, **r, "skipped": len(truths) - len(held), "truth": truth_file,
                     "search_size": old.get("search_size")}


if __name__ == "__main__":
    main()
