"""Under torchrun: the gradients of one sampled path of a level-2 demo supernet, different images on each rank,
three ways: ``local`` (no synchronisation), ``flat`` (``GradSync.all``) and ``overlapped`` (``GradSync.backward``:
the path's views, bucketed, during backward). Each rank saves its three sets to ``$GLIT_TEST_WEIGHTS/grads<rank>.pt``
for ``tests/test_resume_ddp.py`` to compare."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import torch
import torch.distributed as td

import glit
from glit.presets import space_preset
from glit.train.dist import GradSync, init_distributed


def main(bucket: int) -> None:
    dist = init_distributed("cpu")
    space = space_preset("demo", 2)
    arch = space.sample(random.Random(3))  # the same path on every rank
    torch.manual_seed(0)
    model = glit.Supernet(space)
    images = torch.randn(8, space.family.in_chans, space.family.img_size, space.family.img_size,
                         generator=torch.Generator().manual_seed(dist.rank))
    labels = torch.arange(8) % space.family.num_classes
    sync = GradSync(model, dist, bucket=bucket)
    grads = {}
    for mode in ("local", "flat", "overlapped"):
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images, arch), labels)
        if mode == "overlapped":
            with sync.backward(model.path_views(arch)):
                loss.backward()
        else:
            loss.backward()
            if mode == "flat":
                sync.all(model)
        grads[mode] = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    sync.close()
    torch.save(grads, Path(os.environ["GLIT_TEST_WEIGHTS"]) / f"grads{dist.rank}.pt")
    td.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]))
