"""The body that supernet training and retraining share: optimiser, resume, epochs, checkpoints and metrics.

``--out DIR`` holds ``config.yaml`` (the resolved config), ``checkpoint.pt`` (the latest, written atomically after
each epoch) and ``metrics.jsonl`` (one line per epoch); ``glit.folder`` checks DIR before a run begins.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as td
from torch import nn

from glit.config import Config, OptimConfig
from glit.errors import GlitError
from glit.files import write_jsonl
from glit.text import fmt_seconds
from glit.train.board import Board
from glit.train.checkpoint import load_weights, rng_state, save_checkpoint, set_rng_state
from glit.train.dist import Dist, GradSync, barrier
from glit.train.loop import Step, train_one_epoch
from glit.train.optim import make_optimizer


def fit(model: nn.Module, cfg: Config, o: OptimConfig, loader, out: Path, dist: Dist, *,
        evaluate_fn: Callable[[nn.Module], dict], payload: dict, num_classes: int, step: Callable[..., Step] = Step,
        checkpoint: dict | None = None, desc: str = "train") -> list[dict]:
    """Train ``model`` for ``o.epochs`` epochs, resuming from ``checkpoint``; returns the metrics of every epoch.

    ``step`` makes the training step from the recipe, the grad scaler, the EMA and the gradient sync (``Step``, or
    the supernet recipe's ``SupernetStep`` with its sampler bound). ``payload`` (the space or the architecture, and
    what the run records) goes into each checkpoint.
    """
    optimizer = make_optimizer(model, o)
    if o.tf32 and dist.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    scaler = None
    if o.amp == "fp16":
        if dist.device.type != "cuda":
            raise GlitError("amp=fp16 needs a GPU; use amp=bf16 on CPU")
        scaler = torch.amp.GradScaler("cuda")
    ema = copy.deepcopy(model).requires_grad_(False) if o.ema > 0 else None
    step = step(o, cfg.aug, num_classes, cfg.seed, scaler=scaler, ema=ema,
                sync=GradSync(model, dist) if dist.world > 1 else None)
    history, start = [], 0
    torch.manual_seed(cfg.seed * 1000 + dist.rank)  # drop path reads the global RNG; offset by rank
    if checkpoint is not None:
        for key in ("kind", "arch", "space"):
            if checkpoint.get(key) != payload.get(key):
                raise GlitError(f"{out}: holds a run of another {'model' if key == 'kind' else key} "
                                f"({key} differs); use another --out")
        load_weights(model, checkpoint, out / "checkpoint.pt")
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scaler is not None:
            scaler.load_state_dict(checkpoint["scaler"])
        if ema is not None:
            ema.load_state_dict(checkpoint["ema"])
        rngs = checkpoint["rng"]
        set_rng_state(rngs[dist.rank] if len(rngs) == dist.world else rngs[0])
        history, start = list(checkpoint["metrics"]), checkpoint["epoch"]
        if dist.main:
            write_jsonl(out / "metrics.jsonl", history)
    board = Board(out, cfg.log.tensorboard and dist.main, [(h["epoch"], _scalars(h, desc)) for h in history])
    try:
        for epoch in range(start, o.epochs):
            stats = train_one_epoch(model, loader, optimizer, epoch, step, dist, desc)
            line = {"epoch": epoch + 1, "loss": stats["loss"], "lr": stats["lr"],
                    "images_per_s": stats["images_per_s"], "seconds": stats["seconds"],
                    "paths": _digests(stats["archs"], dist)}
            if (epoch + 1) % o.eval_every == 0 or epoch + 1 == o.epochs:
                evaluation = evaluate_fn(ema if ema is not None else model)  # top1 (percent), and eval loss
                line.update({f"eval_{k}" if k == "loss" else k: v for k, v in evaluation.items()})
            history.append(line)
            state = {
                "kind": payload["kind"], "epoch": epoch + 1, "metrics": history, "config": cfg.to_dict(),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler else None, "ema": ema.state_dict() if ema else None,
                "rng": _gather(rng_state(), dist), **payload,
            }
            if dist.main:
                save_checkpoint(out / "checkpoint.pt", state)
                write_jsonl(out / "metrics.jsonl", history)
                board.add(epoch + 1, _scalars(line, desc))
                top1 = f"  top-1 {line['top1']:.2f}%" if "top1" in line else ""
                spent = [h["seconds"] for h in history[start:]]  # this process's epochs: the ETA of the rest
                left = o.epochs - epoch - 1
                eta = f"  ETA {fmt_seconds(sum(spent) / len(spent) * left)}" if left else ""
                print(f"{desc} epoch {epoch + 1}/{o.epochs}  loss {line['loss']:.4f}  lr {line['lr']:.2e}{top1}  "
                      f"{line['images_per_s']:.0f} img/s  {line['seconds']:.0f} s{eta}", flush=True)
            barrier(dist)
    finally:
        board.close()
        if step.sync is not None:
            step.sync.close()
    return history


def _scalars(line: dict, desc: str) -> dict:
    """A metrics line's numbers, as TensorBoard tags (``supernet/loss``, ``train/top1``, ...)."""
    return {f"{desc}/{key}": value for key, value in line.items() if key != "epoch"}


def _digests(archs: list, dist: Dist) -> list[str]:
    """A digest of the paths each rank trained this epoch (standalone: all None). Equal on every rank by design."""
    def plain(a):
        return [plain(x) for x in a] if isinstance(a, list) else a.to_dict() if a else None

    digest = hashlib.sha256(repr([plain(a) for a in archs]).encode()).hexdigest()[:16]
    return _gather(digest, dist)


def _gather(obj, dist: Dist) -> list:
    if dist.world == 1:
        return [obj]
    out = [None] * dist.world
    td.all_gather_object(out, obj)
    return out
