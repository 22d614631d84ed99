"""The architectures that ``glit truth`` trains from scratch: a stratified sample of a space under a budget.
Plain Python, no torch.

Why stratified rather than uniform. A uniform draw picks each block's number of global heads uniformly, so the total
piles up in the middle: on ``cifar`` (6 blocks of 3 heads) only about 8% of the draws under the budget have fewer
than a third of their heads global and 11% more than two thirds, and the MACs of the draws under the budget crowd
against the budget (half of them lie within 4 M MACs of it). A ranking measured on such a sample says little about
the mostly-local and mostly-global designs, where the paper's claims live, or about lighter models. And the
hierarchy scores two kinds of members: level 1 scores distributions with the detail genes at their level-1 values,
while level 2 and random search score members of the whole space. So the sample is, in this order:

0. the DeiT-style architecture (every head global, qkv_ratio 1, mlp_ratio 4): the baseline and the budget;
1. the all-local design with the level-1 detail genes;
2. then a repeating cycle of 12 cells, alternating a **level-1 member** (detail genes at their level-1 values) and a
   **whole-space member** (every gene drawn), over three bands of the share of global heads (``few``: under a third,
   ``mixed``, ``many``: over two thirds). Whole-space members also alternate two bands of MACs: ``lighter``, the
   lightest quarter of the members under the budget (below the 25th percentile of the MACs of uniform draws under
   the budget), and ``heavier``, the rest. Each cycle visits every (band, MACs) cell of the whole space once and every
   band of level 1 twice, and consecutive cells differ in kind and band, so any prefix of the sample is spread too.

Within a cell, draws are uniform (rejection sampling from the space's uniform sampler) and distinct from every
earlier member. Draw i uses its own ``random.Random(f"truth:{seed}:{i}")``, so the sample of n members is the first
n of any larger sample: ``glit truth --archs`` can be raised later and extends the same file.

``uniform_sample`` is the other sample ``glit truth`` offers (``--sample uniform``): members drawn uniformly from the
whole space under the budget, no anchors and no strata. It is what a search meets, so a confirmation set drawn that
way (with a seed of its own) tests a supernet where it is used, on architectures no stratum was chosen for.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from glit.errors import GlitError
from glit.space import Arch, SearchSpace

BANDS = ("few", "mixed", "many")
CYCLE = (  # (kind, global-head band, MACs band)
    ("level1", "few", None), ("whole", "few", "lighter"), ("level1", "mixed", None), ("whole", "mixed", "heavier"),
    ("level1", "many", None), ("whole", "many", "lighter"), ("level1", "few", None), ("whole", "few", "heavier"),
    ("level1", "mixed", None), ("whole", "mixed", "lighter"), ("level1", "many", None), ("whole", "many", "heavier"),
)
MAX_TRIES = 200_000  # draws per member before a cell counts as empty
QUANTILE_DRAWS = 4000  # uniform draws under the budget that set the MACs quartile


@dataclass(frozen=True)
class Member:
    arch: Arch
    stratum: str  # "deit", "all-local", "level1/few", "whole/mixed/heavier", ...


def global_band(arch: Arch) -> str:
    """``few`` (under a third of the heads global), ``mixed`` or ``many`` (over two thirds)."""
    share = sum(b.num_global_heads for b in arch.blocks) / (arch.family.num_heads * arch.family.depth)
    return "few" if share < 1 / 3 else "many" if share > 2 / 3 else "mixed"


def stratified_sample(whole: SearchSpace, level1: SearchSpace, anchors: Sequence[Member],
                      budget: Callable[[Arch], bool], macs: Callable[[Arch], float], n: int,
                      seed: int = 0, max_tries: int = MAX_TRIES) -> list[Member]:
    """The first ``n`` members: the ``anchors`` that meet the budget, then the cycle of cells (module docstring).

    A cell with no member under the budget (a tight ``--max-macs`` can empty the ``many`` band) falls back to its
    kind alone, and the stratum says so (``whole/any``)."""
    members = [m for m in anchors if budget(m.arch)][:n]
    taken = {m.arch for m in members}
    cut = _lighter_cut(whole, budget, macs, seed, max_tries)
    i = 0
    while len(members) < n:
        kind, band, weight = CYCLE[i % len(CYCLE)]
        space = level1 if kind == "level1" else whole
        rng = random.Random(f"truth:{seed}:{len(members)}")

        def fits(arch, band=band, weight=weight):
            return (global_band(arch) == band
                    and (weight is None or (macs(arch) < cut) == (weight == "lighter")))

        arch = _draw(space, rng, lambda a: a not in taken and budget(a) and fits(a), max_tries)
        stratum = "/".join(x for x in (kind, band, weight) if x)
        if arch is None:
            arch, stratum = _draw(space, rng, lambda a: a not in taken and budget(a), max_tries), f"{kind}/any"
        if arch is None:
            raise GlitError(f"truth: no new {kind} member under the budget in {max_tries} draws "
                            f"({len(members)} found); lower --archs or raise the budget")
        members.append(Member(arch, stratum))
        taken.add(arch)
        i += 1
    return members


def uniform_sample(whole: SearchSpace, budget: Callable[[Arch], bool], n: int, seed: int,
                   max_tries: int = MAX_TRIES) -> list[Member]:
    """The first ``n`` distinct members of ``whole`` drawn uniformly under the budget (rejection sampling). Draw i
    uses ``random.Random(f"uniform:{seed}:{i}")``, so the sample of n members is the first n of any larger one."""
    members: list[Member] = []
    taken: set[Arch] = set()
    while len(members) < n:
        rng = random.Random(f"uniform:{seed}:{len(members)}")
        arch = _draw(whole, rng, lambda a: a not in taken and budget(a), max_tries)
        if arch is None:
            raise GlitError(f"truth: no new member under the budget in {max_tries} draws ({len(members)} found); "
                            "lower --archs or raise the budget")
        members.append(Member(arch, "uniform"))
        taken.add(arch)
    return members


def _lighter_cut(space: SearchSpace, budget: Callable[[Arch], bool], macs: Callable[[Arch], float],
                 seed: int, max_tries: int) -> float:
    """The 25th percentile of the MACs of uniform draws from ``space`` under the budget."""
    rng = random.Random(f"truth-quartile:{seed}")
    values = []
    for _ in range(max_tries):
        if len(values) >= QUANTILE_DRAWS:
            break
        arch = space.sample(rng)
        if budget(arch):
            values.append(macs(arch))
    if not values:
        raise GlitError(f"truth: no member of the space under the budget in {max_tries} draws; raise the budget")
    return sorted(values)[len(values) // 4]


def _draw(space: SearchSpace, rng: random.Random, accept: Callable[[Arch], bool], max_tries: int) -> Arch | None:
    for _ in range(max_tries):
        arch = space.sample(rng)
        if accept(arch):
            return arch
    return None
