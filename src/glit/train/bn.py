"""BatchNorm recalibration for one path of a supernet (or a standalone model)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from glit.space import Arch


@torch.no_grad()
def recalibrate_bn(model: nn.Module, arch: Arch | None, batches: Iterable[Tensor]) -> int:
    """Reset the BatchNorm statistics and re-estimate them as a plain average over ``batches``, running ``arch``'s
    path with everything else in eval mode (no drop path). Returns the number of batches used.

    In a supernet, the statistics of every path share one set of buffers; a reset clears them all, and the
    re-estimate fills the slices that ``arch`` uses. Score a path right after recalibrating it.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    model.eval()
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
    n = 0
    try:
        for x in batches:
            model(x, arch)
            n += 1
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        model.train(was_training)
    return n
