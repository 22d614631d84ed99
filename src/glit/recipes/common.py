"""Small pieces the recipes share: the family a dataset implies, and seeded model construction."""

from __future__ import annotations

import dataclasses

import torch

from glit.space import Arch, Family, SearchSpace


def with_classes(family: Family, num_classes: int) -> Family:
    """The number of classes comes from the data; everything else from the preset or the architecture."""
    return dataclasses.replace(family, num_classes=num_classes)


def space_for_data(space: SearchSpace, num_classes: int) -> SearchSpace:
    return dataclasses.replace(space, family=with_classes(space.family, num_classes))


def arch_for_data(arch: Arch, num_classes: int) -> Arch:
    return dataclasses.replace(arch, family=with_classes(arch.family, num_classes))


def init_generator(seed: int) -> torch.Generator:
    """Weights are initialised from the run's seed alone: equal on every rank."""
    return torch.Generator().manual_seed(seed)
