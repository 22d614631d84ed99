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


def element_step(optimizer: torch.optim.AdamW, views: dict[nn.Parameter, Callable[[Tensor], Tensor]], step) -> None:
    """The masked update with AdamW's step count kept **per element**: ``step()`` for the parameters outside the
    sliced layers (every path uses them wholly), then, for each parameter in ``views`` (every parameter of the sliced
    layers that the path uses, wholly or in part: ``Supernet.path_views(arch, every=True)``), AdamW on its view with
    a count of the updates each element has had. An element that the paths used k times has exactly the weight and
    moments of an AdamW that saw only those k gradients (``tests/test_optim.py``).

    Why: with a per-tensor count (``path_step``), an element used in k of the tensor's t updates is bias-corrected as
    if it had t: its second moment is scaled up by about k/t and its step is about sqrt(t/k) too large. The rarest
    slices (wide local modules, outer kernel taps) then take steps several times larger than the shared ones.

    The counts live in the optimiser's state as ``step``, a tensor of the parameter's shape (a checkpoint written
    with per-tensor counts continues: each element starts from its tensor's count)."""
    hidden = {p: p.grad for p in views if p.grad is not None}
    for p in hidden:
        p.grad = None  # step() skips them
    step()
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p in hidden:
                    view = views[p]
                    state = _element_state(optimizer, p)
                    _adamw_elements(group, view(p), view(hidden[p]), view(state["exp_avg"]), view(state["exp_avg_sq"]),
                                    view(state["step"]))
    for p, grad in hidden.items():
        p.grad = grad


def element_masked_step(optimizer: torch.optim.AdamW, masks: dict[nn.Parameter, Tensor], step) -> None:
    """``element_step`` for a union of paths (the sandwich rule): per-element AdamW on whole tensors, then every
    element outside the mask, with its moments and count, restored."""
    hidden = {p: p.grad for p in masks if p.grad is not None}
    for p in hidden:
        p.grad = None
    step()
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p in hidden:
                    state = _element_state(optimizer, p)
                    olds = [p.detach(), state["exp_avg"], state["exp_avg_sq"], state["step"]]
                    news = [t.clone() for t in olds]
                    _adamw_elements(group, news[0], hidden[p], *news[1:])
                    for old, new in zip(olds, news):
                        old.copy_(torch.where(masks[p], new, old))
    for p, grad in hidden.items():
        p.grad = grad


def _element_state(optimizer: torch.optim.Optimizer, p: nn.Parameter) -> dict:
    state = optimizer.state[p]
    if not state:
        state.update(step=torch.zeros_like(p), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
    elif state["step"].shape != p.shape:  # a per-tensor count (a checkpoint from before): every element starts there
        state["step"] = torch.full_like(p, float(state["step"]))
    return state


def _adamw_elements(group: dict, param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
                    count: Tensor) -> None:
    """torch's single-tensor AdamW (decoupled weight decay, no amsgrad), in place, with ``count`` a tensor of
    per-element step counts in place of the scalar step."""
    if group["amsgrad"] or group["maximize"]:
        raise GlitError("the per-element supernet update supports plain AdamW only (no amsgrad, no maximize)")
    beta1, beta2 = group["betas"]
    lr = float(group["lr"])
    count.add_(1)
    param.mul_(1 - lr * group["weight_decay"])
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - torch.pow(beta1, count)
    bias_correction2_sqrt = (1 - torch.pow(beta2, count)).sqrt_()
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
    param.addcdiv_(exp_avg, denom.mul_(bias_correction1), value=-lr)


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
