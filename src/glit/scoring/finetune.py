"""The ``finetune`` evaluator: a candidate's inherited weights trained alone for a few steps, then scored.

Why: a supernet path's weights are a compromise between every path that shares them (issue 26 in bench/RESULTS.md:
the shared weights rate an architecture by how many of its blocks hold attention, not by how well it trains). A few
hundred steps of the candidate alone let it leave the compromise before it is judged. Every candidate sees the same
training batches, in the same order, from the same starting point of the optimiser (fresh AdamW, the supernet
recipe's learning rate times ``search.finetune_lr``, reached by a linear warm-up over the first tenth of the steps and
decayed to zero by a cosine over the rest: a fresh AdamW at the full rate would first undo the inherited weights),
so the scores differ only by the architecture
and its inherited weights. BatchNorm is then recalibrated and top-1 is measured on the search split, as the
``supernet`` evaluator does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from glit.config import OptimConfig
from glit.nn import Supernet
from glit.scoring.supernet import Batches, top1
from glit.space import Arch
from glit.train.bn import recalibrate_bn
from glit.train.dist import Dist, all_gather_floats
from glit.train.loop import autocast
from glit.train.optim import make_optimizer, scaled_lr, set_lr


def finetune(model: torch.nn.Module, batches: Batches, o: OptimConfig, label_smoothing: float,
             scale: float = 1.0) -> list[float]:
    """Train ``model`` (standalone) on ``batches`` in order with AdamW (``o``'s weight decay and clipping) at
    ``scale`` x ``scaled_lr(o)``: a linear warm-up over the first tenth of the steps, then a cosine to 0; the
    training loss of every step."""
    batches = list(batches)
    optimizer = make_optimizer(model, o)
    base, warmup = scale * scaled_lr(o), max(1, len(batches) // 10)
    model.train()
    losses = []
    for i, (x, y) in enumerate(batches):
        lr = base * (i + 1) / warmup if i < warmup else \
            base * 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(1, len(batches) - warmup)))
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        with autocast(x.device, o.amp):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=label_smoothing)
        loss.backward()
        if o.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        optimizer.step()
        losses.append(loss.item())
    return losses


class FinetuneFitness:
    """``fitness(archs) -> scores``: each candidate extracted from the supernet, fine-tuned on ``train`` (the same
    batches for all), BatchNorm recalibrated on ``calib``, top-1 on ``search``. Spread over ranks as
    ``SupernetFitness`` is."""

    def __init__(self, supernet: Supernet, train: Batches, calib: Batches, search: Batches, dist: Dist,
                 o: OptimConfig, label_smoothing: float, scale: float = 1.0):
        self.supernet, self.train, self.calib, self.search, self.dist = supernet, train, calib, search, dist
        self.o, self.label_smoothing, self.scale = o, label_smoothing, scale

    def score(self, arch: Arch) -> float:
        model = self.supernet.extract(arch)
        with torch.enable_grad():
            finetune(model, self.train, self.o, self.label_smoothing, self.scale)
        with torch.no_grad():
            recalibrate_bn(model, None, (x for x, _ in self.calib))
            return top1(model, self.search, self.o.amp)

    def __call__(self, archs: list[Arch]) -> list[float]:
        mine = [self.score(a) for a in archs[self.dist.rank::self.dist.world]]
        return all_gather_floats(mine, len(archs), self.dist)
