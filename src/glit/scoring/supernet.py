"""Fitness with inherited weights: recalibrate a path's BatchNorm statistics, then measure top-1 on the search
split (carved from the training set; the test split is never touched).

The batches are prepared once and kept in memory when they fit (``max_cache_bytes``), so scoring a candidate is only
the model's work. Each candidate is extracted from the supernet into a standalone model first: the extraction
copies its weights once, whereas scoring through the supernet path would re-slice them on every batch
(``bench/search_throughput.py`` measures both).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from glit.config import Config
from glit.data.build import Data, eval_loader
from glit.errors import GlitError
from glit.nn import Supernet
from glit.space import Arch, SearchSpace
from glit.train.bn import recalibrate_bn
from glit.train.checkpoint import load_weights
from glit.train.dist import Dist, all_gather_floats
from glit.train.loop import autocast


class Batches:
    """A loader's batches, decoded and transformed once and kept in memory if they fit, else re-read each time."""

    def __init__(self, loader, limit: int | None, device: torch.device, max_cache_bytes: float = 2e9):
        self.loader, self.limit, self.device = loader, limit, device
        self.cached: list[tuple[Tensor, Tensor]] | None = []
        size = 0
        for x, y in self._read():  # one pass: keep the batches unless they outgrow the cache
            size += x.element_size() * x.numel()
            if size > max_cache_bytes:
                self.cached = None
                break
            self.cached.append((x.to(device), y.to(device)))

    def _read(self):
        for i, batch in enumerate(self.loader):
            if self.limit is not None and i >= self.limit:
                return
            yield batch

    def __iter__(self):
        if self.cached is not None:
            yield from self.cached
        else:
            for x, y in self._read():
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


@torch.no_grad()
def score(supernet: Supernet, arch: Arch, calib: Batches, search: Batches, amp: str = "none") -> float:
    """Top-1 (percent) on the search split of ``arch`` with inherited weights and recalibrated BatchNorm."""
    model = supernet.extract(arch)
    with autocast(calib.device, amp):
        recalibrate_bn(model, None, (x for x, _ in calib))
    return top1(model, search, amp)


@torch.no_grad()
def top1(model: torch.nn.Module, batches: Batches, amp: str = "none") -> float:
    """Top-1 (percent) of a standalone model, in eval mode, on ``batches``."""
    model.eval()
    correct = n = 0
    with autocast(batches.device, amp):
        for x, y in batches:
            correct += (model(x).argmax(-1) == y).sum().item()
            n += y.numel()
    return 100.0 * correct / max(n, 1)


class SupernetFitness:
    """``fitness(archs) -> scores`` for the search strategies. Under ``torchrun`` the candidates are split over the
    ranks (rank r scores candidates r, r + world, ...) and the scores are gathered, so every rank returns the same
    list, and the same list a single process would."""

    def __init__(self, supernet: Supernet, calib: Batches, search: Batches, dist: Dist, amp: str = "none"):
        self.supernet, self.calib, self.search, self.dist, self.amp = supernet, calib, search, dist, amp

    def __call__(self, archs: list[Arch]) -> list[float]:
        mine = [score(self.supernet, a, self.calib, self.search, self.amp)
                for a in archs[self.dist.rank::self.dist.world]]
        return all_gather_floats(mine, len(archs), self.dist)


def supernet_fitness(cfg: Config, ckpt: dict, file: Path, data: Data, dist: Dist) -> SupernetFitness:
    """How the search scores a candidate of the supernet in ``ckpt``: inherited weights, BatchNorm recalibrated on
    ``search.bn_batches`` training batches, top-1 on the search split. The data must be the supernet's own."""
    trained = SearchSpace.from_dict(ckpt["space"], f"{file}: space")
    recorded = ckpt.get("split", {}).get("search_indices_sha256")
    if recorded and recorded != data.record["search_indices_sha256"]:
        raise GlitError(f"{file}: the supernet was trained with another search split; search with its data and "
                        "data.split_seed, data.search_size and data.train_subset")
    if trained.family.num_classes != data.num_classes:
        raise GlitError(f"{file}: the supernet has {trained.family.num_classes} classes, the data {data.num_classes}")
    model = Supernet(trained, local_weights=ckpt.get("local_weights", "shared")).to(dist.device)
    load_weights(model, ckpt, file)
    s, img = cfg.search, trained.family.img_size
    calib = Batches(eval_loader(cfg, data.fit, img, s.batch_size), s.bn_batches, dist.device)
    held = Batches(eval_loader(cfg, data.search, img, s.batch_size), None, dist.device)
    return SupernetFitness(model, calib, held, dist, cfg.supernet.optim.amp)
