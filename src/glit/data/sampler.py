"""Which samples each rank sees in an epoch, and with which augmentation seed.

The epoch's global order depends only on ``(seed, epoch)``, so it is the same on every rank; rank r takes positions
r, r + world, ... of it. With ``repeats`` > 1 (repeated augmentation, DeiT's RASampler) each image appears ``repeats``
times in a row in the global order, so its copies land on different ranks with different augmentations, and the
epoch keeps its usual length (it covers about 1/repeats of the distinct images).

Each key is ``(index, seed)``: the per-sample augmentation seed comes from ``(seed, epoch, position)``, so
augmentation differs by rank and by repeat, and does not depend on the number of DataLoader workers.
"""

from __future__ import annotations

import math
import random


class EpochSampler:
    def __init__(self, n: int, *, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 repeats: int = 1, pad: bool = True):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.shuffle, self.repeats, self.pad = shuffle, repeats, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.n / self.world)
        return len(range(self.rank, self.n, self.world))

    def __iter__(self):
        order = list(range(self.n))
        if self.shuffle:
            random.Random(f"order:{self.seed}:{self.epoch}").shuffle(order)
        order = [i for i in order for _ in range(self.repeats)]
        total = len(self) * self.world if self.pad else self.n
        order = (order * math.ceil(total / len(order)))[:total]  # pad by wrapping so every rank gets len(self)
        for position in range(self.rank, total, self.world):
            yield order[position], f"aug:{self.seed}:{self.epoch}:{position}"
