"""The splits a run uses, and DataLoaders over them (SPEC 3.2).

- ``test``: the held-out evaluation split (ImageFolder ``val/`` or ``test/``; a seeded 20% of digits). Final
  accuracy is reported on it. The search never sees it.
- ``search``: ``data.search_size`` images carved from the training set with ``data.split_seed``. Search fitness is
  measured on it.
- ``fit``: the rest of the training set; supernets train on it. Retraining uses ``full`` = fit + search.

``data.train_subset`` first restricts the training set to that many images (seeded), for CPU-sized runs; the rest
are ``unused`` (never trained or searched on: ``bench/supernet_ranking.py`` scores candidates on them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass

import torch

from glit.config import Config
from glit.data.datasets import ImageDataset, Source, digits, image_folder
from glit.data.sampler import EpochSampler
from glit.data.transforms import eval_transform, train_transform
from glit.errors import GlitError


@dataclass
class Data:
    fit: Source
    search: Source
    full: Source
    test: Source
    unused: Source  # training images left out by data.train_subset, in the seeded order; empty without one
    record: dict  # what the run writes down about its splits

    @property
    def num_classes(self) -> int:
        return len(self.test.classes)


class SharedData:
    """One decode per run: the stages of ``glit run`` (and the trainings of one ``glit truth`` worker) pass one of
    these to ``load_data``, which lists and decodes the data the first time a stage needs it and hands the same
    splits to every later stage with the same ``data`` config. A stage that finds its work done never loads it."""

    def __init__(self):
        self._loaded: dict[str, Data] = {}

    def get(self, cfg: Config) -> Data:
        key = json.dumps(dataclasses.asdict(cfg.data), sort_keys=True)
        if key not in self._loaded:
            self._loaded[key] = _load(cfg)
        return self._loaded[key]


def load_data(cfg: Config, shared: SharedData | None = None) -> Data:
    """The splits of ``cfg.data``: from ``shared`` when given (decoded once per run), else read now."""
    return shared.get(cfg) if shared is not None else _load(cfg)


def _load(cfg: Config) -> Data:
    d = cfg.data
    if d.source == "digits":
        train, test = digits(d.test_fraction, d.split_seed)
    elif d.source == "folder":
        if not d.root:
            raise GlitError(f"preset {cfg.preset!r} reads an ImageFolder tree: pass --data DIR "
                            "(root/train/<class>/*.jpg and root/val/ or root/test/)")
        train, test = image_folder(d.root, d.cache)
    else:
        raise GlitError(f"data.source must be digits or folder, got {d.source!r}")
    order = list(range(len(train)))
    random.Random(f"split:{d.split_seed}").shuffle(order)
    rest = []
    if d.train_subset:
        order, rest = order[:d.train_subset], order[d.train_subset:]
    if not 0 < d.search_size < len(order):
        raise GlitError(f"data.search_size={d.search_size} must be between 1 and the {len(order)} training images - 1")
    search_idx, fit_idx = sorted(order[:d.search_size]), sorted(order[d.search_size:])
    record = {
        "source": d.source, "root": d.root, "split_seed": d.split_seed, "train_images": len(train),
        "train_subset": d.train_subset, "search_size": len(search_idx), "fit_size": len(fit_idx),
        "test_size": len(test), "classes": train.classes,
        "search_indices_sha256": hashlib.sha256(repr(search_idx).encode()).hexdigest(),
        "search_indices": search_idx,
    }
    return Data(train.subset(fit_idx), train.subset(search_idx), train.subset(sorted(order)), test,
                train.subset(rest), record)


def same_split(a: dict | None, b: dict) -> bool:
    """Whether two split records describe the same images and the same split, wherever the tree lies."""
    return isinstance(a, dict) and {k: v for k, v in a.items() if k != "root"} == \
        {k: v for k, v in b.items() if k != "root"}


def fingerprint(record: dict) -> str:
    """A short digest of the data a model was trained on that does not depend on where the tree lies: the source, the
    classes, the number of training and test images, and the training subset. ``glit truth`` records it, and
    ``glit rank`` checks that a supernet saw the same data."""
    keys = ("source", "classes", "train_images", "test_size", "train_subset", "split_seed")
    return hashlib.sha256(json.dumps({k: record.get(k) for k in keys}, sort_keys=True).encode()).hexdigest()[:16]


def train_loader(cfg: Config, source: Source, img_size: int, batch_size: int, rank: int = 0, world: int = 1):
    """Shuffled, augmented batches for one rank; call ``loader.sampler.set_epoch(e)`` each epoch."""
    if batch_size > len(source):
        raise GlitError(f"batch size {batch_size} is larger than the {len(source)} training images")
    sampler = EpochSampler(len(source), seed=cfg.seed, rank=rank, world=world, repeats=cfg.aug.repeated_aug)
    dataset = ImageDataset(source, train_transform(cfg.aug, img_size))
    return _loader(dataset, sampler, batch_size, cfg.data.workers, drop_last=True)


def eval_loader(cfg: Config, source: Source, img_size: int, batch_size: int, rank: int = 0, world: int = 1):
    """Every image exactly once over all ranks (no padding), in a fixed order, with the evaluation transform."""
    sampler = EpochSampler(len(source), seed=cfg.seed, rank=rank, world=world, shuffle=False, pad=False)
    dataset = ImageDataset(source, eval_transform(cfg.aug, img_size))
    return _loader(dataset, sampler, batch_size, cfg.data.workers, drop_last=False)


def _loader(dataset, sampler, batch_size, workers, drop_last):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
    )
