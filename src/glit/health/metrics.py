"""How well a supernet ranks architectures against ground truth: the figures ``glit rank`` prints. No torch.

- **Kendall tau-b and Spearman rho** between the supernet's scores and the mean ground-truth top-1 over seeds
  (scipy's ``kendalltau`` and ``spearmanr``; both handle ties).
- **Precision at k**: the share of the true top k that the supernet also puts in its top k.
- **Regret**: the true top-1 of the supernet's favourite minus the true best (0 is perfect; it is never positive).
- **Kendall tau among the mixes**: the same tau over the architectures that have both global and local heads,
  leaving out the pure designs (every head global, or every head local), which are easy to rank last and can carry
  a tau alone.
- **Local bias**: tau(score, local share) - tau(truth, local share), with ``local_share`` below. Zero when the
  supernet's scores follow the architectures' amount of local computation exactly as retraining does; negative when
  the supernet under-rates local heads. At n = 24 it moves far more than tau does when one operator type is mis-rated.
- **The selection test** (``selection``): how much an evaluator's pick gains over a random pick, the question a
  search answers. For subsets of m architectures of the pool, the evaluator picks its favourite of each; the gain is
  the true top-1 of that pick minus the subset's mean (a uniformly random pick's expectation), and the regret is it
  minus the subset's best, both averaged over every subset of m (exactly: item i is the pick of C(below_i, m - 1) of
  the C(n, m) subsets, below_i the items it outscores). Their 95% intervals come from a bootstrap over the pool's
  architectures (scipy's ``bootstrap``, percentile method): what another pool of the same size might have given.
- **Noise ceiling**: Kendall tau between the seed-0 and seed-1 top-1 of the architectures trained with both seeds,
  over the whole truth file. Two retrainings of the same architectures agree only this well, so a supernet ranking
  near it is as good as retraining noise lets anyone measure.

Ties in the supernet's score (a 1,000-image search split scores in steps of 0.1 points) are broken by the order of
the truth file, for precision and regret alike. A figure that needs more architectures than there are is ``None``
(tau and rho need 3, precision at k needs more than k).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from glit.errors import GlitError
from glit.space import Arch


@dataclass
class Truth:
    """One architecture of a truth file and its test top-1 per seed."""

    arch: Arch
    top1: dict[int, float]

    @property
    def mean(self) -> float:
        return sum(self.top1.values()) / len(self.top1)


def read_truth(path: str | Path) -> list[dict]:
    """The rows of a ``truth.jsonl`` (empty when the file does not exist); a malformed line is an error that names
    the file and the line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise GlitError(f"{path}: line {n}: malformed JSON ({err.msg})") from None
        missing = [k for k in ("arch", "seed", "top1") if not isinstance(row, dict) or k not in row]
        if missing:
            raise GlitError(f"{path}: line {n}: missing key {missing[0]!r}")
        rows.append(row)
    return rows


def group(rows: Sequence[dict], where: str = "truth") -> list[Truth]:
    """Rows of a ``truth.jsonl`` (one per architecture and seed) -> one ``Truth`` per architecture, in file order.
    A seed that appears twice for one architecture is an error."""
    by_arch: dict[Arch, Truth] = {}
    for n, row in enumerate(rows, 1):
        arch = Arch.from_dict(row["arch"], f"{where}: line {n}: arch")
        top1, seed = row["top1"], row["seed"]
        if not isinstance(top1, (int, float)) or isinstance(top1, bool) or not math.isfinite(top1):
            raise GlitError(f"{where}: line {n}: top1 must be a number, got {top1!r}")
        entry = by_arch.setdefault(arch, Truth(arch, {}))
        if seed in entry.top1:
            raise GlitError(f"{where}: line {n}: seed {seed} appears twice for one architecture")
        entry.top1[seed] = float(top1)
    return list(by_arch.values())


def local_share(arch: Arch) -> float:
    """The architecture's local computation: the mean over blocks of (local heads / heads) x conv_ratio, a block
    without local heads counting 0. So 0 for the DeiT-style design, 1 for all-local blocks at conv_ratio 1, 4 at
    conv_ratio 4. The kernel size and the local operator do not enter."""
    h = arch.family.num_heads
    return sum((h - b.num_global_heads) / h * (b.conv_ratio or 0) for b in arch.blocks) / len(arch.blocks)


def is_mix(arch: Arch) -> bool:
    """Whether the architecture has both global and local heads (anywhere in its blocks)."""
    g = [b.num_global_heads for b in arch.blocks]
    return any(x > 0 for x in g) and any(x < arch.family.num_heads for x in g)


def bias_metrics(archs: Sequence[Arch], scores: Sequence[float], truth: Sequence[float]) -> dict:
    """``kendall_tau_mixes`` (with ``n_mixes``) and ``local_bias`` of ``scores`` against ``truth`` (module doc)."""
    mixes = [i for i, a in enumerate(archs) if is_mix(a)]
    tau_mixes = _tau([scores[i] for i in mixes], [truth[i] for i in mixes])
    share = [local_share(a) for a in archs]
    by_score, by_truth = _tau(scores, share), _tau(truth, share)
    bias = None if by_score is None or by_truth is None else by_score - by_truth
    return {"kendall_tau_mixes": tau_mixes, "n_mixes": len(mixes), "local_bias": bias,
            "score_local_tau": by_score, "truth_local_tau": by_truth}


def _tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    return _finite(stats.kendalltau(a, b).statistic) if len(a) >= 3 else None


def expected_pick(scores: Sequence[float], truth: Sequence[float], m: int) -> tuple[float, float]:
    """(mean truth of the pick by ``scores``, mean truth of the best) over all subsets of ``m`` items."""
    n = len(scores)

    def by(key):  # E[truth of the subset's top item by key]: item at rank r from the bottom tops C(r, m-1) subsets
        order = sorted(range(n), key=lambda i: (key[i], -i))  # ties: the earlier item wins, as in _order
        total = math.comb(n, m)
        return sum(math.comb(r, m - 1) * truth[i] for r, i in enumerate(order)) / total

    return by(scores), by(truth)


def selection(scores: Sequence[float], truth: Sequence[float], m: int = 10, resamples: int = 2000,
              seed: int = 0) -> dict:
    """The selection test (module doc): ``gain`` and ``regret`` in points, each with its bootstrap ``ci95``."""
    n = len(scores)
    if not 2 <= m <= n:
        raise GlitError(f"the selection test needs subsets of 2 to {n} architectures, got {m}")

    def figures(idx) -> tuple[float, float]:
        s, t = [scores[i] for i in idx], [truth[i] for i in idx]
        pick, best = expected_pick(s, t, min(m, len(idx)))
        return pick - sum(t) / len(t), pick - best

    gain, regret = figures(range(n))
    boot = stats.bootstrap((list(range(n)),), lambda idx: figures([int(i) for i in idx]), vectorized=False,
                           paired=False, n_resamples=resamples, method="percentile",
                           rng=np.random.default_rng(seed))
    (g_lo, r_lo), (g_hi, r_hi) = boot.confidence_interval.low, boot.confidence_interval.high
    return {"subset": m, "pool": n, "gain": gain, "gain_ci95": [float(g_lo), float(g_hi)], "regret": regret,
            "regret_ci95": [float(r_lo), float(r_hi)]}


def rank_metrics(scores: Sequence[float], truth: Sequence[float], k: int = 5) -> dict:
    """Kendall tau, Spearman rho, precision at ``k`` and regret of ``scores`` against ``truth`` (same order)."""
    n = len(scores)
    if n != len(truth):
        raise ValueError("scores and truth differ in length")
    out = {"n": n, "kendall_tau": None, "kendall_p": None, "spearman_rho": None, f"precision_at_{k}": None,
           "regret": None}
    if n == 0:
        return out
    if n >= 3:
        tau = stats.kendalltau(scores, truth)
        rho = stats.spearmanr(scores, truth)
        out.update(kendall_tau=_finite(tau.statistic), kendall_p=_finite(tau.pvalue),
                   spearman_rho=_finite(rho.statistic))
    by_score, by_truth = _order(scores), _order(truth)
    if n > k:
        out[f"precision_at_{k}"] = len(set(by_score[:k]) & set(by_truth[:k])) / k
    out["regret"] = truth[by_score[0]] - max(truth)
    return out


def noise_ceiling(truths: Sequence[Truth], seeds: tuple[int, int] = (0, 1)) -> dict:
    """Kendall tau between the top-1 of two seeds over the architectures trained with both."""
    a, b = seeds
    both = [t for t in truths if a in t.top1 and b in t.top1]
    tau = stats.kendalltau([t.top1[a] for t in both], [t.top1[b] for t in both]).statistic if len(both) >= 3 else None
    return {"noise_ceiling_tau": _finite(tau), "noise_ceiling_n": len(both), "noise_ceiling_seeds": list(seeds)}


def _order(values: Sequence[float]) -> list[int]:
    """Indices, best first; ties keep their order."""
    return sorted(range(len(values)), key=lambda i: -values[i])


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
