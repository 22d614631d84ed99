"""The two loops that supernet training and retraining share, ``train_one_epoch`` and ``evaluate``, and the
standalone model's training ``Step``.

``train_one_epoch`` owns what every step shares (the learning-rate schedule, Mixup and CutMix, the loss window and
its host syncs, the progress bar); what one step does is its ``Step``'s: the plain step here, or the supernet's
(``glit.recipes.train_supernet.SupernetStep``), which samples the step's path from an RNG seeded by the run's seed
and the global step (the same path on every rank).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as td
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from glit.config import AugConfig, OptimConfig
from glit.data.mixup import mix_batch, soft_target_cross_entropy
from glit.errors import GlitError
from glit.space import Arch
from glit.train.dist import Dist, GradSync, all_sum, average_buffers
from glit.train.optim import lr_at, set_lr

SYNC_EVERY = 32  # steps between host syncs (the loss check and the progress bar): a sync per step stalls a GPU


@dataclass
class Step:
    """One training step of a standalone model: forward, backward, gradient sync, clip, AdamW, EMA. The supernet's
    step (``glit.recipes.train_supernet.SupernetStep``) is this one's subclass: it samples the step's path and
    updates only that path's weights."""

    optim: OptimConfig
    aug: AugConfig
    num_classes: int
    seed: int
    scaler: torch.amp.GradScaler | None = None
    ema: nn.Module | None = None
    sync: GradSync | None = None  # averages gradients over ranks; None: one process

    def path(self, global_step: int) -> Arch | list[Arch] | None:
        """What the step trains: None, the whole model."""
        return None

    def __call__(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, targets: Tensor,
                 path: None) -> Tensor:
        """Train on one batch; returns its mean loss (detached, not synced to the host)."""
        optimizer.zero_grad(set_to_none=True)
        with autocast(x.device, self.optim.amp):
            logits = model(x, None)
        loss = soft_target_cross_entropy(logits.float(), targets)
        with self.sync.backward(None) if self.sync else nullcontext():
            (self.scaler.scale(loss) if self.scaler else loss).backward()
        self.clip(model, optimizer)
        self.apply(optimizer)
        self.after(model)
        return loss.detach()

    def clip(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.optim.clip_grad > 0:
            if self.scaler:
                self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.optim.clip_grad)

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimiser's step (through the grad scaler under fp16)."""
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def after(self, model: nn.Module) -> None:
        if self.ema is not None:
            update_ema(self.ema, model, self.optim.ema)


def autocast(device: torch.device, amp: str):
    if amp == "none":
        return torch.autocast(device.type, enabled=False)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device.type, dtype=dtype)


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, epoch: int, step: Step,
                    dist: Dist, desc: str = "train") -> dict:
    """One pass over ``loader``. Returns the epoch's mean loss, last lr, images/s, the paths it trained and each
    step's loss (``step_losses``, this rank's; kept on the device and read once at the end, so no extra sync)."""
    model.train()
    loader.sampler.set_epoch(epoch)
    steps = len(loader)
    total_loss, seen, archs, step_losses = 0.0, 0, [], []
    window, window_seen = torch.zeros((), dtype=torch.float64, device=dist.device), 0  # losses since the last sync
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{step.optim.epochs}", leave=False,
               disable=None if dist.main else True, dynamic_ncols=True)
    for i, (x, y) in enumerate(bar):
        global_step = epoch * steps + i
        arch = step.path(global_step)
        archs.append(arch)
        lr = lr_at(global_step, steps, step.optim)
        set_lr(optimizer, lr)
        x, y = x.to(dist.device, non_blocking=True), y.to(dist.device, non_blocking=True)
        mix_rng = torch.Generator().manual_seed(hash((step.seed, global_step, dist.rank)) & (2**63 - 1))
        x, targets = mix_batch(x, y, step.num_classes, step.aug, mix_rng)
        loss = step(model, optimizer, x, targets, arch)
        step_losses.append(loss)
        window += loss.double() * x.shape[0]
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
            "archs": archs, "step_losses": torch.stack(step_losses).float().tolist() if step_losses else []}


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
