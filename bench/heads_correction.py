"""Would a supernet score corrected for its global-head bias rank the ground truth? (issue 27)

The level-1 supernet's score rises with the total of global heads while retrained top-1 falls with it (issue 26).
This tries the simplest correction, ``score - c * global_heads``, for a range of c, on ``glit rank --json`` results
of ``--evaluator supernet`` (no training: the pairs hold each architecture's score and retrained top-1). Choose c on
one file and read the others: a c that only helps the file it was chosen on is no evidence.

    python bench/heads_correction.py bench/rank/cifar-seed14-supernet.json bench/rank/cifar-confirm-seed14-supernet.json

For each file it prints Kendall tau against retrained top-1 for each c, then for fewer global heads alone (c large),
and the partial tau with the global heads regressed out of both score and truth (scipy for the statistics).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from finalist_round import scores_by_arch  # sibling benchmarks
from pool_tse import global_heads

CS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 5.0)


def load(file: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(global heads, score, retrained top-1) of every architecture of a ``glit rank --json`` result."""
    pairs = scores_by_arch(file)
    heads = np.array([global_heads(json.loads(arch)) for arch in pairs], float)
    return heads, np.array([s for s, _ in pairs.values()]), np.array([t for _, t in pairs.values()])


def residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    fit = stats.linregress(x, y)
    return y - fit.intercept - fit.slope * x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rank", nargs="+", help="glit rank --json results of the supernet evaluator")
    args = ap.parse_args()
    print("file".ljust(40) + "".join(f"c={c:<6g}" for c in CS) + "heads only  partial")
    for file in args.rank:
        heads, score, truth = load(file)
        taus = [stats.kendalltau(score - c * heads, truth).statistic for c in CS]
        alone = stats.kendalltau(-heads, truth).statistic
        partial = stats.kendalltau(residual(score, heads), residual(truth, heads)).statistic
        name = Path(file).name
        print(f"{name:40s}" + "".join(f"{t:+.2f}   " for t in taus) + f"{alone:+.2f}       {partial:+.2f}")


if __name__ == "__main__":
    main()
