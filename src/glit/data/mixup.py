"""Batch-level Mixup and CutMix with label smoothing (timm's ``Mixup`` in 'batch' mode), and the soft-target loss.

Every random number comes from a CPU ``torch.Generator`` passed in and is turned into a Python float or int, so the
images themselves may live on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from glit.config import AugConfig
from glit.errors import GlitError


def _uniform(generator: torch.Generator) -> float:
    return torch.rand((), generator=generator).item()  # [0, 1)


def _log_gamma(alpha: float, generator: torch.Generator) -> float:
    """log of a Gamma(alpha, 1) draw: Marsaglia and Tsang (2000), with the U^(1/alpha) boost for alpha < 1.

    Worked in logs so that Beta stays accurate when a tiny alpha makes one variate underflow.
    """
    log_boost = 0.0
    if alpha < 1:
        log_boost = math.log1p(-_uniform(generator)) / alpha  # log U / alpha, U in (0, 1]
        alpha += 1
    d = alpha - 1 / 3
    c = 1 / math.sqrt(9 * d)
    while True:
        z = torch.randn((), generator=generator).item()
        v = 1 + c * z
        if v <= 0:
            continue
        v = v ** 3
        u = _uniform(generator)
        if u < 1 - 0.0331 * z ** 4 or u == 0 or math.log(u) < 0.5 * z * z + d * (1 - v + math.log(v)):
            return math.log(d * v) + log_boost


def sample_beta(a: float, b: float, generator: torch.Generator) -> float:
    """One Beta(a, b) draw, X / (X + Y) for X ~ Gamma(a), Y ~ Gamma(b), from ``generator`` only."""
    log_x, log_y = _log_gamma(a, generator), _log_gamma(b, generator)
    return 0.5 * (1 + math.tanh((log_x - log_y) / 2))  # = 1 / (1 + exp(log_y - log_x)), without overflow


def smooth_one_hot(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B, num_classes) float32 targets: ``1 - smoothing + smoothing / C`` on the label, ``smoothing / C`` elsewhere."""
    off = smoothing / num_classes
    target = torch.full((y.shape[0], num_classes), off, dtype=torch.float32, device=y.device)
    return target.scatter_(1, y.long().view(-1, 1), 1 - smoothing + off)


def cutmix_box(height: int, width: int, lam: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """timm's rand_bbox: (top, bottom, left, right) of a box about (1 - lam) of the image, clipped at the border."""
    ratio = math.sqrt(1 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, (), generator=generator).item())
    cx = int(torch.randint(0, width, (), generator=generator).item())
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def _mix_params(aug: AugConfig, generator: torch.Generator) -> tuple[float, bool]:
    """(lam, use_cutmix); lam 1 means: leave the batch alone."""
    if (aug.mixup <= 0 and aug.cutmix <= 0) or aug.mix_prob <= 0:
        return 1.0, False
    if _uniform(generator) >= aug.mix_prob:
        return 1.0, False
    if aug.mixup > 0 and aug.cutmix > 0:
        use_cutmix = _uniform(generator) < aug.switch_prob
    else:
        use_cutmix = aug.cutmix > 0
    alpha = aug.cutmix if use_cutmix else aug.mixup
    return sample_beta(alpha, alpha, generator), use_cutmix


def mix_batch(x: torch.Tensor, y: torch.Tensor, num_classes: int, aug: AugConfig,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, C, H, W) and labels (B,) -> (possibly mixed) images and soft targets (B, num_classes).

    With probability ``aug.mix_prob`` the batch is mixed with its own reverse (``x.flip(0)``): CutMix with
    probability ``aug.switch_prob`` when both are on, else Mixup; lam ~ Beta(alpha, alpha). CutMix's lam is
    corrected to the area of the pasted box. ``x`` itself is never modified.
    """
    if not 0 <= aug.label_smoothing < 1:
        raise GlitError(f"aug.label_smoothing must be in [0, 1), got {aug.label_smoothing}")
    target = smooth_one_hot(y, num_classes, aug.label_smoothing)
    lam, use_cutmix = _mix_params(aug, generator)
    if lam == 1.0:
        return x, target
    if use_cutmix:
        height, width = x.shape[-2:]
        top, bottom, left, right = cutmix_box(height, width, lam, generator)
        lam = 1 - (bottom - top) * (right - left) / (height * width)
        x = x.clone()
        x[:, :, top:bottom, left:right] = x.flip(0)[:, :, top:bottom, left:right]
    else:
        x = x * lam + x.flip(0) * (1 - lam)
    return x, target * lam + target.flip(0) * (1 - lam)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``sum(-targets * log_softmax(logits))``."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
