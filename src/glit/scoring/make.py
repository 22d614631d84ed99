"""Build an evaluator (``glit.scoring``) as ``fitness(archs) -> scores``."""

from __future__ import annotations

from pathlib import Path

import torch

from glit.config import Config
from glit.data.build import Data, eval_loader, train_loader
from glit.errors import GlitError
from glit.nn import build_model
from glit.scoring import EVALUATORS, NEEDS_SUPERNET
from glit.scoring.finetune import FinetuneFitness
from glit.scoring.proxies import proxy_score
from glit.scoring.short import ShortFitness
from glit.scoring.supernet import Batches, supernet_fitness
from glit.space import Arch, Family
from glit.train.dist import Dist, all_gather_floats


class ProxyFitness:
    """A zero-cost proxy of each candidate, initialised from the run's seed, on one fixed training batch."""

    def __init__(self, name: str, x: torch.Tensor, y: torch.Tensor, seed: int, dist: Dist):
        self.name, self.x, self.y, self.seed, self.dist = name, x, y, seed, dist

    def score(self, arch: Arch) -> float:
        model = None if self.name == "params" else \
            build_model(arch, generator=torch.Generator().manual_seed(self.seed)).to(self.x.device)
        return proxy_score(self.name, model, arch, self.x, self.y)

    def __call__(self, archs: list[Arch]) -> list[float]:
        mine = [self.score(a) for a in archs[self.dist.rank::self.dist.world]]
        return all_gather_floats(mine, len(archs), self.dist)


def make_fitness(name: str, cfg: Config, data: Data, dist: Dist, family: Family, ckpt: dict | None = None,
                 file: str | Path = "supernet"):
    """The evaluator ``name`` on this data, for candidates of ``family``; ``supernet`` and ``finetune`` need the
    supernet's checkpoint ``ckpt`` (read from ``file``)."""
    if name not in EVALUATORS:
        raise GlitError(f"unknown evaluator {name!r} (valid: {', '.join(EVALUATORS)})")
    s, img = cfg.search, family.img_size
    if name in NEEDS_SUPERNET:
        if ckpt is None:
            raise GlitError(f"the {name} evaluator scores with a supernet's weights: pass one")
        fitness = supernet_fitness(cfg, ckpt, Path(file), data, dist)
        if name == "supernet":
            return fitness
        o = cfg.supernet.optim
        train = Batches(train_loader(cfg, data.fit, img, o.batch_size), s.finetune_steps, dist.device)
        return FinetuneFitness(fitness.supernet, train, fitness.calib, fitness.search, dist, o,
                               cfg.aug.label_smoothing, s.finetune_lr)
    if name in ("short", "short-tse"):
        search = Batches(eval_loader(cfg, data.search, img, s.batch_size), None, dist.device)
        return ShortFitness(cfg, data, search, dist, s.short_epochs, tse=name == "short-tse")
    x, y = next(iter(train_loader(cfg, data.fit, img, s.batch_size)))
    return ProxyFitness(name, x.to(dist.device), y.to(dist.device), cfg.seed, dist)
