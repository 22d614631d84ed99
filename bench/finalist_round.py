"""The selection test of a finalist round, from two ``glit rank --json`` results on the same truth file.

A round keeps the supernet's top K of a subset and lets another evaluator pick among them (``search.finalists`` and
``search.finalist_evaluator``). For each K this prints the true top-1 of the round's pick minus a uniformly random
pick's (the subset's mean), and minus the subset's best, over random subsets of M architectures of the truth pool,
each with a bootstrap 95% interval over the pool (the same resampling as ``glit rank --selection``; Monte Carlo over
subsets here, because a round's pick has no closed form). K = 1 is the supernet's own pick, K = M the evaluator's.

    python bench/finalist_round.py --supernet supernet.json --evaluator short1.json --subset 10 --k 1,2,4,6,10
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def scores_by_arch(file: str, tse: bool = False) -> dict[str, tuple[float, float]]:
    """arch (as JSON text) -> (score, truth top-1) from a ``glit rank --json`` result (``tse``: the short
    evaluator's training-speed scores, kept under ``tse``)."""
    data = json.load(open(file))
    pairs = data["tse"]["pairs"] if tse else data["pairs"]
    return {json.dumps(p["arch"], sort_keys=True): (p["score"], p["truth_top1"]) for p in pairs}


def round_figures(sup: np.ndarray, ev: np.ndarray, truth: np.ndarray, pool: np.ndarray, k: int, m: int,
                  subsets: int, rng: np.random.Generator) -> tuple[float, float]:
    """(gain over a random pick, regret to the best) of the round, averaged over ``subsets`` random subsets of
    ``m`` items of ``pool`` (indices; a bootstrap pool may repeat one)."""
    idx = np.stack([rng.choice(pool, size=m, replace=False) for _ in range(subsets)])
    s, e, t = sup[idx], ev[idx], truth[idx]
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]  # the supernet's top k of each subset
    pick = top[np.arange(subsets), np.argmax(np.take_along_axis(e, top, axis=1), axis=1)]
    picked = t[np.arange(subsets), pick]
    return float(np.mean(picked - t.mean(axis=1))), float(np.mean(picked - t.max(axis=1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--supernet", required=True, help="glit rank --json with --evaluator supernet")
    ap.add_argument("--evaluator", required=True, help="glit rank --json with the round's evaluator")
    ap.add_argument("--tse", action="store_true", help="re-score by the TSE scores of a --evaluator short result")
    ap.add_argument("--subset", type=int, default=10)
    ap.add_argument("--k", default="1,2,4,6,10")
    ap.add_argument("--subsets", type=int, default=2000, help="random subsets per estimate")
    ap.add_argument("--resamples", type=int, default=400, help="bootstrap resamples of the pool")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    a, b = scores_by_arch(args.supernet), scores_by_arch(args.evaluator, args.tse)
    keys = sorted(set(a) & set(b))
    sup = np.array([a[k][0] for k in keys])
    ev = np.array([b[k][0] for k in keys])
    truth = np.array([a[k][1] for k in keys])
    n, m = len(keys), args.subset
    print(f"{n} architectures in both files; subsets of {m}; {args.subsets} subsets per estimate, "
          f"{args.resamples} bootstrap resamples of the pool")
    print(f"{'K':>3}  {'gain over random (95% CI)':>30}  {'regret to best (95% CI)':>30}")
    for k in [int(x) for x in args.k.split(",")]:
        rng = np.random.default_rng(args.seed)
        gain, regret = round_figures(sup, ev, truth, np.arange(n), k, m, args.subsets * 5, rng)
        boot = [round_figures(sup, ev, truth, rng.choice(n, size=n, replace=True), k, m, args.subsets, rng)
                for _ in range(args.resamples)]
        g_lo, g_hi = np.percentile([g for g, _ in boot], [2.5, 97.5])
        r_lo, r_hi = np.percentile([r for _, r in boot], [2.5, 97.5])
        print(f"{k:>3}  {gain:+8.2f} ({g_lo:+6.2f} to {g_hi:+6.2f})          {regret:+8.2f} ({r_lo:+6.2f} to "
              f"{r_hi:+6.2f})")


if __name__ == "__main__":
    main()
