"""The ``short`` evaluator: a candidate trained from scratch for k epochs, scored two ways from the same run.

- ``short``: top-1 on the search split after k epochs of the retraining recipe compressed to k epochs (the same
  optimiser, learning rate, augmentation and seed as ``glit train``; warm-up scaled by k / epochs), trained on the
  supernet's training images (the search split stays held out);
- ``short-tse``: the training-speed estimate of Ru, Lyle, Schut, Fil, van der Wilk and Gal ("Speedy Performance
  Estimation for Neural Architecture Search", NeurIPS 2021): minus the sum of the training losses over the run (the
  sum over epochs of each epoch's mean loss: every candidate takes the same number of steps, so this orders them as
  the sum over steps does). A model that learns faster early scores higher. Each step's loss is kept too
  (``step_losses``), so that TSE over a part of the run can be read from the same training (``glit rank --json``
  writes them into the TSE pairs; ``bench/tse_prefix.py``).

It costs k epochs of training per candidate, and uses no supernet.
"""

from __future__ import annotations

import dataclasses

import torch

from glit.config import Config
from glit.data.build import Data, train_loader
from glit.nn import build_model
from glit.scoring.supernet import Batches, top1
from glit.space import Arch
from glit.train.dist import Dist, all_gather_floats
from glit.train.loop import Step, train_one_epoch
from glit.train.optim import make_optimizer


def compressed(cfg: Config, epochs: int):
    """The retraining recipe (``cfg.train``) compressed to ``epochs`` epochs: warm-up scaled alike, no sizing."""
    o = cfg.train
    return dataclasses.replace(o, epochs=epochs, warmup_epochs=o.warmup_epochs * epochs / max(o.epochs, 1),
                               images=None, eval_every=epochs)


class ShortFitness:
    """``fitness(archs) -> scores`` (``short`` or ``short-tse``); both figures of every candidate trained are kept in
    ``results``, so that one run serves both evaluators."""

    def __init__(self, cfg: Config, data: Data, search: Batches, dist: Dist, epochs: int, tse: bool = False):
        self.cfg, self.data, self.search, self.dist, self.tse = cfg, data, search, dist, tse
        self.o = compressed(cfg, epochs)
        self.results: dict[Arch, dict] = {}

    def train(self, arch: Arch) -> dict:
        if arch in self.results:
            return self.results[arch]
        cfg, o = self.cfg, self.o
        torch.manual_seed(cfg.seed)  # drop path reads the global RNG
        model = build_model(arch, drop_path=o.drop_path, generator=torch.Generator().manual_seed(cfg.seed))
        model = model.to(self.search.device)
        loader = train_loader(cfg, self.data.fit, arch.family.img_size, o.batch_size)
        optimizer = make_optimizer(model, o)
        step = Step(o, cfg.aug, self.data.num_classes, cfg.seed)
        one = Dist(device=self.search.device)  # each rank trains its own candidates alone
        epochs = [train_one_epoch(model, loader, optimizer, e, step, one, desc="short") for e in range(o.epochs)]
        self.results[arch] = {"top1": top1(model, self.search, o.amp), "train_loss_sum": sum(e["loss"] for e in epochs),
                              "step_losses": [x for e in epochs for x in e["step_losses"]]}
        return self.results[arch]

    def __call__(self, archs: list[Arch]) -> list[float]:
        mine = [self.train(a) for a in archs[self.dist.rank::self.dist.world]]
        return all_gather_floats([-r["train_loss_sum"] if self.tse else r["top1"] for r in mine], len(archs),
                                 self.dist)
