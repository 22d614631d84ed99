"""AdamW with DeiT's parameter groups, a warm-up + cosine schedule, and the masked supernet update."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim.adam import adam

from glit.config import OptimConfig
from glit.errors import GlitError

NO_DECAY_NAMES = ("pos_embed", "cls_token")


def make_optimizer(model: nn.Module, o: OptimConfig) -> torch.optim.AdamW:
    """AdamW at lr * batch_size / 512, with no weight decay on biases, norms, position embedding or class token."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(NO_DECAY_NAMES) else decay).append(p)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=scaled_lr(o), fused=True if o.fused else None)


def sized(o: OptimConfig, train_images: int) -> OptimConfig:
    """The recipe for a training set of ``train_images`` images: with ``o.images`` set, about ``o.images`` images
    seen in all (epochs within ``[o.min_epochs, o.max_epochs]``, warm-up scaled alike); else ``o`` as it is."""
    if o.images is None:
        return o
    if o.images < 1 or o.min_epochs < 1 or o.max_epochs is not None and o.max_epochs < o.min_epochs:
        raise GlitError(f"images must be positive and 1 <= min_epochs <= max_epochs, got images={o.images}, "
                        f"min_epochs={o.min_epochs}, max_epochs={o.max_epochs}")
    epochs = max(o.min_epochs, round(o.images / max(train_images, 1)))
    if o.max_epochs is not None:
        epochs = min(epochs, o.max_epochs)
    return dataclasses.replace(o, epochs=epochs, warmup_epochs=o.warmup_epochs * epochs / max(o.epochs, 1))


def describe_length(o: OptimConfig, train_images: int, steps_per_epoch: int, what: str) -> str:
    """One line: how long a training runs on this data (what ``glit run`` and the training commands print)."""
    rule = f" ({o.images:,} images in all, sized to this data)" if o.images is not None else ""
    return (f"{what}: {train_images:,} training images: {o.epochs} epochs{rule} of {steps_per_epoch} steps, "
            f"{o.epochs * steps_per_epoch:,} steps in all")


def scaled_lr(o: OptimConfig) -> float:
    return o.lr * o.batch_size / 512


def lr_at(step: int, steps_per_epoch: int, o: OptimConfig) -> float:
    """Linear warm-up from ``warmup_lr`` over ``warmup_epochs``, then cosine decay that would reach ``min_lr`` at
    step ``epochs * steps_per_epoch``, one past the last trained step (as timm's per-step cosine does)."""
    base = scaled_lr(o)
    warmup = int(o.warmup_epochs * steps_per_epoch)
    total = o.epochs * steps_per_epoch
    if step < warmup:
        return o.warmup_lr + (base - o.warmup_lr) * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return o.min_lr + 0.5 * (base - o.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def path_step(optimizer: torch.optim.AdamW, views: dict[nn.Parameter, Callable[[Tensor], Tensor]], step) -> None:
    """The masked update of one sampled path, in place: ``step()`` (the optimiser's) for the parameters the path uses
    wholly, then AdamW on the path's views (``Supernet.path_views``) of the parameters it uses in part: the view of
    the weight, of its gradient and of both moments, with the optimiser's own hyperparameters and kernel
    (``torch.optim.adam.adam``, decoupled weight decay). Elements off the path are never read or written.

    The same update as ``masked_step``, bit for bit on CPU (``tests/test_train.py``), without its copies of every
    sliced weight and moment: on small models those cost more than the arithmetic. Not for fused AdamW (its kernel
    assumes contiguous tensors) or a grad scaler (it unscales only what ``step()`` sees): use ``masked_step``.
    """
    hidden = {p: p.grad for p in views if p.grad is not None}
    for p in hidden:
        p.grad = None  # step() skips them
    step()
    with torch.no_grad():
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p in hidden]
            if not params:
                continue
            for p in params:
                state = optimizer.state[p]
                if not state:  # as torch.optim.AdamW starts a parameter's state
                    state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            states = [optimizer.state[p] for p in params]
            beta1, beta2 = group["betas"]
            adam([views[p](p) for p in params], [views[p](hidden[p]) for p in params],
                 [views[p](s["exp_avg"]) for p, s in zip(params, states)],
                 [views[p](s["exp_avg_sq"]) for p, s in zip(params, states)], [], [s["step"] for s in states],
                 foreach=group["foreach"], capturable=group["capturable"], differentiable=group["differentiable"],
                 decoupled_weight_decay=True, amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=group["lr"],
                 weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])
    for p, grad in hidden.items():
        p.grad = grad


def masked_step(optimizer: torch.optim.Optimizer, masks: dict[nn.Parameter, Tensor], step) -> None:
    """Run ``step()`` (the optimiser's step, or a grad scaler's), then restore every parameter element outside its
    mask, and its AdamW moment estimates, to their values before the step.

    Why: a supernet step's gradient is zero outside the sampled path, but AdamW's momentum and decoupled weight
    decay would still move those weights. With the mask, a step changes exactly the sampled path. Parameters that
    the path does not touch at all have no gradient (``zero_grad(set_to_none=True)``), and AdamW skips them itself.
    (AdamW's per-tensor step count, used for bias correction, still advances for a partly used tensor.)
    """
    saved = []
    for p, mask in masks.items():
        if p.grad is None or bool(mask.all()):
            continue
        state = optimizer.state.get(p, {})
        moments = [state[k].clone() for k in ("exp_avg", "exp_avg_sq") if k in state]
        saved.append((p, mask, p.detach().clone(), moments))
    step()
    with torch.no_grad():
        for p, mask, before, moments in saved:
            p.copy_(torch.where(mask, p, before))
            state = optimizer.state[p]
            for key, old in zip(("exp_avg", "exp_avg_sq"), moments):  # none before the first step: they start at 0
                state[key].copy_(torch.where(mask, state[key], old))
