"""Level-1 scoring with the detail genes marginalised: a distribution's score is the mean score of several detail
settings drawn for it, instead of the score of one frozen setting (the level-1 values). Plain Python, no torch.

SPEC 1.3 scores a distribution (the number of global heads per block) with its detail genes at their level-1 values.
Level 2 then changes those details, so level 1 ranks distributions by a setting that the final architecture will
not have. With ``search.level1_scoring=marginal`` (on a supernet trained over the whole space) the level-1 search
scores each distribution as the mean over ``search.marginal_samples`` detail settings drawn uniformly, under the
budget, from the whole space with that distribution: an estimate of how good the distribution is whatever level 2
then picks. The draws of a distribution depend only on it and the seed, so a distribution scores the same whenever
it is scored (and a resumed search ends as an uninterrupted one).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from glit.space import Arch, SearchSpace

Fitness = Callable[[list[Arch]], list[float]]


def detail_draws(arch: Arch, whole: SearchSpace, budget: Callable[[Arch], bool], samples: int, seed: int,
                 max_tries: int = 1000) -> list[Arch]:
    """Up to ``samples`` distinct members of ``whole`` with ``arch``'s distribution, under the budget; ``[arch]``
    itself when none is found in ``max_tries`` draws."""
    g = [b.num_global_heads for b in arch.blocks]
    space = whole.fix(num_global_heads=g)
    rng = random.Random(f"marginal:{seed}:{g}")
    draws: list[Arch] = []
    for _ in range(max_tries):
        if len(draws) >= min(samples, space.size()):
            break
        candidate = space.sample(rng)
        if candidate not in draws and budget(candidate):
            draws.append(candidate)
    return draws or [arch]


def marginal_fitness(fitness: Fitness, whole: SearchSpace, budget: Callable[[Arch], bool], samples: int,
                     seed: int) -> Fitness:
    """``fitness`` of a distribution = the mean ``fitness`` of its detail draws. One call of ``fitness`` per batch of
    candidates, so a distributed fitness still spreads every draw of the batch over the ranks."""

    def score(archs: list[Arch]) -> list[float]:
        groups = [detail_draws(a, whole, budget, samples, seed) for a in archs]
        flat = fitness([d for group in groups for d in group])
        out, i = [], 0
        for group in groups:
            out.append(sum(flat[i:i + len(group)]) / len(group))
            i += len(group)
        return out

    return score
