"""Landmark regularisation of a supernet (Yu, Ranftl and Salzmann, "Landmark Regularization: Ranking Guided Super-Net
Training in Neural Architecture Search", CVPR 2021).

A few architectures whose stand-alone accuracy is known (the landmarks: rows of a ``truth.jsonl``, such as
``glit truth`` writes) are ranked against each other while the supernet trains. Every ``every``-th step, besides its
sampled path, trains two landmarks drawn from an RNG seeded by the run's seed and the global step (the same pair on
every rank and after a resume) with a hinge on their losses on the step's batch:

    weight x max(0, margin + loss(better) - loss(worse))

so that the shared weights learn to give the better landmark the lower loss. The supernet's own loss is unchanged;
only the pair's weights get the hinge's gradient. glit's supernets rank architectures at chance on ground truth
and under-rate local heads (``bench/RESULTS.md``, issues 26-27); this is the remedy of the literature brief that
injects a ranking directly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from glit.errors import GlitError
from glit.health.metrics import group, read_truth
from glit.space import Arch, SearchSpace


@dataclass(frozen=True)
class WithLandmarks:
    """A step's path (one architecture, or the sandwich rule's list) plus the landmark pair ranked on its batch."""

    path: Arch | list[Arch]
    better: Arch
    worse: Arch

    def to_dict(self) -> dict:
        plain = [a.to_dict() for a in self.path] if isinstance(self.path, list) else self.path.to_dict()
        return {"path": plain, "better": self.better.to_dict(), "worse": self.worse.to_dict()}


@dataclass(frozen=True)
class Landmarks:
    """Architectures and their known top-1; ``pair(step)`` draws the pair of a global step, better first (None off
    the steps that rank one, and when the two drawn have the same top-1: a tie has no order to teach)."""

    archs: tuple[Arch, ...]
    top1: tuple[float, ...]
    seed: int
    every: int

    def pair(self, global_step: int) -> tuple[Arch, Arch] | None:
        if global_step % self.every:
            return None
        i, j = random.Random(f"landmark:{self.seed}:{global_step}").sample(range(len(self.archs)), 2)
        if self.top1[i] == self.top1[j]:
            return None
        return (self.archs[i], self.archs[j]) if self.top1[i] > self.top1[j] else (self.archs[j], self.archs[i])


def read_landmarks(path: str | Path, space: SearchSpace, seed: int, every: int) -> Landmarks:
    """The landmarks of a truth file (each architecture's mean top-1 over its seeds). The file must exist, hold at
    least two architectures of ``space``, and not all with the same top-1."""
    path = Path(path)
    if not path.is_file():
        raise GlitError(f"supernet.landmarks: {path} does not exist (a truth.jsonl, e.g. from glit truth)")
    truths = group(read_truth(path), str(path))
    for t in truths:
        try:
            space.check(t.arch)
        except GlitError as err:
            raise GlitError(f"supernet.landmarks: {path} holds an architecture outside this supernet's space "
                            f"({err})") from None
    if len({t.mean for t in truths}) < 2:
        raise GlitError(f"supernet.landmarks: {path} needs at least two architectures with different top-1")
    return Landmarks(tuple(t.arch for t in truths), tuple(t.mean for t in truths), seed, every)
