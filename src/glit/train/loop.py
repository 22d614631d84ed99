"""The two loops that supernet training and retraining share: ``train_one_epoch`` and ``evaluate``.

The supernet passes ``arch_for_step``, which draws the step's path from an RNG seeded by the run's seed and the
global step (the same path on every rank). Standalone training passes ``lambda step: None``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as td
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from glit.config import AugConfig, OptimConfig
from glit.data.mixup import mix_batch, soft_target_cross_entropy
from glit.errors import GlitError
from glit.space import Arch
from glit.train.dist import Dist, GradSync, all_sum, average_buffers
from glit.train.optim import element_masked_step, element_step, lr_at, masked_step, path_step, set_lr

SYNC_EVERY = 32  # steps between host syncs (the loss check and the progress bar): a sync per step stalls a GPU


@dataclass
class Step:
    """What one training step needs besides the batch."""

    optim: OptimConfig
    aug: AugConfig
    num_classes: int
    seed: int
    arch_for_step: Callable[[int], Arch | None]
    masked_update: bool = False
    scaler: torch.amp.GradScaler | None = None
    ema: nn.Module | None = None
    distill: bool = False  # sandwich rule: paths after the first learn its soft predictions, not the labels
    sync: GradSync | None = None  # averages gradients over ranks; None: one process
    element_counts: bool = False  # the masked update keeps AdamW's step count per element (supernet.adam_step)


def autocast(device: torch.device, amp: str):
    if amp == "none":
        return torch.autocast(device.type, enabled=False)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device.type, dtype=dtype)


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, epoch: int, step: Step,
                    dist: Dist, desc: str = "train") -> dict:
    """One pass over ``loader``. Returns the epoch's mean loss, last lr, images/s and the paths it trained."""
    model.train()
    loader.sampler.set_epoch(epoch)
    steps = len(loader)
    total_loss, seen, archs = 0.0, 0, []
    window, window_seen = torch.zeros((), dtype=torch.float64, device=dist.device), 0  # losses since the last sync
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{step.optim.epochs}", leave=False,
               disable=None if dist.main else True, dynamic_ncols=True)
    for i, (x, y) in enumerate(bar):
        global_step = epoch * steps + i
        arch = step.arch_for_step(global_step)
        archs.append(arch)
        lr = lr_at(global_step, steps, step.optim)
        set_lr(optimizer, lr)
        x, y = x.to(dist.device, non_blocking=True), y.to(dist.device, non_blocking=True)
        mix_rng = torch.Generator().manual_seed(hash((step.seed, global_step, dist.rank)) & (2**63 - 1))
        x, targets = mix_batch(x, y, step.num_classes, step.aug, mix_rng)
        optimizer.zero_grad(set_to_none=True)
        paths = arch if isinstance(arch, list) else [arch]  # a list: the sandwich rule's paths, largest first
        views = model.path_views(paths[0]) if len(paths) == 1 and paths[0] is not None else None
        for k, path in enumerate(paths):
            with autocast(dist.device, step.optim.amp):
                logits = model(x, path)
            loss = soft_target_cross_entropy(logits.float(), targets)
            if k == 0:
                window += loss.detach().double() * x.shape[0]
                if step.distill and len(paths) > 1:  # in-place distillation: the others learn the largest's output
                    targets = F.softmax(logits.detach().float(), dim=-1)
            with step.sync.backward(views) if step.sync and len(paths) == 1 else nullcontext():
                (step.scaler.scale(loss) if step.scaler else loss).backward()
        if step.sync and len(paths) > 1:
            step.sync.all(model)
        if step.optim.clip_grad > 0:
            if step.scaler:
                step.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), step.optim.clip_grad)

        def apply():
            if step.scaler:
                step.scaler.step(optimizer)
                step.scaler.update()
            else:
                optimizer.step()

        if step.masked_update and arch is not None and step.element_counts:
            if len(paths) == 1:
                element_step(optimizer, model.path_views(paths[0], every=True), apply)
            else:  # the sandwich rule's union of paths
                element_masked_step(optimizer, union_masks([model.path_masks(path) for path in paths]), apply)
        elif step.masked_update and arch is not None:
            if len(paths) == 1 and step.scaler is None and not optimizer.param_groups[0]["fused"]:
                path_step(optimizer, views, apply)  # in place, the fast way
            else:  # the sandwich rule's union of paths, a grad scaler, fused AdamW: restore what is off the paths
                masked_step(optimizer, union_masks([model.path_masks(path) for path in paths]), apply)
        else:
            apply()
        if step.ema is not None:
            update_ema(step.ema, model, step.optim.ema)
        window_seen += x.shape[0]
        if (i + 1) % SYNC_EVERY == 0 or i + 1 == steps:  # one host sync per SYNC_EVERY steps, and at the epoch's end
            value = window.item()
            if not math.isfinite(value):
                first = i - i % SYNC_EVERY + 1
                raise GlitError(f"{desc}: loss is {value / window_seen} in epoch {epoch + 1} (steps {first}-{i + 1}); "
                                "stopped, and the last good checkpoint is kept (lower optim lr, or try amp=none)")
            if dist.main:
                bar.set_postfix(loss=f"{value / window_seen:.3f}", lr=f"{lr:.2e}")
            total_loss, seen = total_loss + value, seen + window_seen
            window.zero_()
            window_seen = 0
    average_buffers(model, dist)
    elapsed = time.perf_counter() - start
    total_loss, seen = all_sum([total_loss, seen], dist)
    return {"loss": total_loss / max(seen, 1), "lr": lr, "images_per_s": seen / elapsed, "seconds": elapsed,
            "archs": archs}


def union_masks(masks: list[dict]) -> dict:
    """The elements that any of several paths uses, per parameter."""
    union = dict(masks[0])
    for more in masks[1:]:
        for p, m in more.items():
            union[p] = union[p] | m if p in union else m
    return union


@torch.no_grad()
def evaluate(model: nn.Module, loader, dist: Dist, arch: Arch | None = None, amp: str = "none",
             desc: str = "eval", per_image: bool = False) -> dict:
    """Top-1 accuracy (percent) and mean cross-entropy of ``arch``'s path (or the standalone model) on ``loader``,
    summed over ranks. With ``per_image``, also ``correct``: whether each image was classified right, in the
    loader's order (rank after rank under DDP), for paired comparisons of models (``glit.verdict``)."""
    model.eval()
    correct, loss_sum, n = 0.0, 0.0, 0.0
    hits = []
    for x, y in tqdm(loader, desc=desc, leave=False, disable=None if dist.main else True, dynamic_ncols=True):
        x, y = x.to(dist.device, non_blocking=True), y.to(dist.device, non_blocking=True)
        with autocast(dist.device, amp):
            logits = model(x, arch).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        right = logits.argmax(-1) == y
        correct += right.sum().item()
        n += y.numel()
        if per_image:
            hits.append(right.cpu())
    correct, loss_sum, n = all_sum([correct, loss_sum, n], dist)
    result = {"top1": 100.0 * correct / max(n, 1), "loss": loss_sum / max(n, 1), "images": int(n)}
    if per_image:
        mine = torch.cat(hits).tolist() if hits else []
        if dist.world > 1:
            every = [None] * dist.world
            td.all_gather_object(every, mine)
            mine = [v for rank in every for v in rank]
        result["correct"] = mine
    return result


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for floating parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
