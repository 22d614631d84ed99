"""Evaluate a trained checkpoint on the test split of its data (or of another ImageFolder tree)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch

from glit.config import Config, apply, validate
from glit.data.build import SharedData, eval_loader, load_data
from glit.data.datasets import eval_folder
from glit.errors import GlitError
from glit.nn import Supernet, build_model
from glit.space import Arch, SearchSpace
from glit.train.bn import recalibrate_bn
from glit.train.checkpoint import load_checkpoint, load_weights
from glit.train.dist import init_distributed
from glit.train.loop import evaluate


@dataclass
class Trained:
    """A trained checkpoint made ready to run: ``model`` (the standalone model, or the supernet with ``path`` the
    architecture it runs), its ``arch``, the run ``cfg``, the ``test`` split and the checkpoint's ``epoch``."""

    model: torch.nn.Module
    arch: Arch
    path: Arch | None
    cfg: Config
    test: object
    epoch: int | None


def load_trained(path: str | Path, data_dir: str | None = None, arch: Arch | None = None,
                 batch_size: int = 256, shared: SharedData | None = None) -> Trained:
    """A model checkpoint (``glit train``; its EMA weights when it has them), or one path of a supernet checkpoint
    (pass ``arch``; its BatchNorm statistics recalibrated on ``search.bn_batches`` training batches, as the search
    does), on the device of its config, with the test split of its data (or of ``data_dir``). ``shared``: the data
    a run has decoded already."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") not in ("model", "supernet"):
        raise GlitError(f"{path}: not a glit training checkpoint (no 'kind')")
    if not isinstance(ckpt.get("config"), dict):
        raise GlitError(f"{path}: the checkpoint holds no run config; it was not written by glit")
    cfg = validate(apply(Config(), ckpt["config"], f"{path}: config"), f"{path}: config")
    if data_dir:
        cfg.data.source, cfg.data.root = "folder", data_dir
    device = init_distributed(cfg.device).device
    # A model needs only the evaluation split; a supernet path also needs training batches to recalibrate BatchNorm.
    data = load_data(cfg, shared) if ckpt["kind"] == "supernet" or not data_dir else None
    test = data.test if data else eval_folder(data_dir)
    if ckpt["kind"] == "model":
        model_arch = Arch.from_dict(ckpt.get("arch"), f"{path}: arch")
        model = build_model(model_arch)
        path_arch = None
    else:
        if arch is None:
            raise GlitError(f"{path}: is a supernet checkpoint; pass --arch to pick the path")
        space = SearchSpace.from_dict(ckpt.get("space"), f"{path}: space")
        space.check(arch)
        model = Supernet(space, local_weights=ckpt.get("local_weights", "shared"))
        path_arch, model_arch = arch, arch
    if model_arch.family.num_classes != len(test.classes):
        raise GlitError(f"{path}: the model has {model_arch.family.num_classes} classes, the data "
                        f"{len(test.classes)}")
    trained_on = (ckpt.get("split") or {}).get("classes")
    if data_dir and trained_on and list(trained_on) != list(test.classes):
        raise GlitError(f"{data_dir}: its class folders {test.classes[:5]} are not the model's {trained_on[:5]}")
    load_weights(model, ckpt, path, "ema" if ckpt.get("ema") else "model")
    model.to(device)
    if path_arch is not None:  # a supernet path: recalibrate its BatchNorm statistics first, as the search does
        calib = eval_loader(cfg, data.fit, model_arch.family.img_size, batch_size)
        recalibrate_bn(model, path_arch, (x.to(device) for x, _ in itertools.islice(calib, cfg.search.bn_batches)))
    return Trained(model, model_arch, path_arch, cfg, test, ckpt.get("epoch"))


def evaluate_checkpoint(path: str | Path, data_dir: str | None = None, arch: Arch | None = None,
                        batch_size: int = 256) -> dict:
    """Top-1 on the test split of a model checkpoint (``glit train``), or of one path of a supernet checkpoint (pass
    ``arch``; see ``load_trained``)."""
    if batch_size < 1:
        raise GlitError(f"--batch-size must be at least 1, got {batch_size}")
    t = load_trained(path, data_dir, arch, batch_size)
    dist = init_distributed(t.cfg.device)
    loader = eval_loader(t.cfg, t.test, t.arch.family.img_size, batch_size, dist.rank, dist.world)
    result = evaluate(t.model, loader, dist, t.path, t.cfg.train.amp, desc="test")
    return {**result, "epoch": t.epoch}
