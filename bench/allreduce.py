"""What synchronising gradients costs a training step, at the ``tiny`` preset's size (issue 14).

In one run, on every rank, on one level-2 ``tiny`` supernet path at 224 px, in interleaved rounds (ranks in step),
the median time of three steps (forward + backward):

- ``alone``: no synchronisation at all (what one process would do);
- ``flat``: then one flat all-reduce of every gradient (``GradSync.all``; what glit did before, and still does
  after a sandwich-rule step's several backward passes);
- ``overlapped``: ``GradSync.backward`` (glit's default): the path's elements only, in buckets sent while backward
  goes on.

The share of a step that synchronisation costs is (step - alone) / step. The goal is under 2% of a step.

    torchrun --nproc-per-node 2 bench/allreduce.py                    # CPU, gloo (2 ranks share this machine's cores)
    torchrun --nproc-per-node 8 bench/allreduce.py --batch 128        # one node of GPUs, NCCL

On CPU the ranks and gloo's threads share the cores, so the figures say little about GPUs; the figure that matters
is the GPU one (one process per GPU, at least 2 GPUs: NCCL cannot put two ranks on one device).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.distributed as td

import glit
from glit.presets import space_preset
from glit.train.dist import GradSync, init_distributed
from train_throughput import sync


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8, help="images per rank and step (default 8)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the three steps (default 5)")
    args = p.parse_args()
    dist = init_distributed("auto")
    if dist.world < 2:
        raise SystemExit("run under torchrun with at least 2 processes: torchrun --nproc-per-node 2 "
                         "bench/allreduce.py")
    space = space_preset("tiny", 2)
    arch = space.sample(random.Random(0))  # the same path on every rank
    model = glit.Supernet(space).to(dist.device)
    images = torch.randn(args.batch, 3, 224, 224, device=dist.device)
    labels = torch.randint(0, space.family.num_classes, (args.batch,), device=dist.device)
    grad_sync = GradSync(model, dist)
    views = model.path_views(arch)

    def step(mode: str) -> None:
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images, arch), labels)
        if mode == "overlapped":
            with grad_sync.backward(views):
                loss.backward()
            return
        loss.backward()
        if mode == "flat":
            grad_sync.all(model)

    modes = ("alone", "flat", "overlapped")
    times = {mode: [] for mode in modes}
    for r in range(args.rounds + 1):  # round 0 warms up
        for mode in modes:
            td.barrier()
            sync(dist.device.type)
            t = time.perf_counter()
            step(mode)
            sync(dist.device.type)
            if r:
                times[mode].append(time.perf_counter() - t)
    med = {mode: statistics.median(ts) for mode, ts in times.items()}
    if dist.main:
        grads = sum(p.grad.numel() for p in model.parameters() if p.grad is not None)
        path = sum(views[p](p).numel() if p in views else p.numel() for p in model.parameters()
                   if p.grad is not None)
        print(f"{dist.world} ranks ({td.get_backend()}, {dist.device.type}); a tiny supernet path, batch {args.batch} "
              f"per rank: {grads:,} gradients, {path:,} of them on the path; {args.rounds} interleaved rounds")
        print(f"{'step':<12} {'median ms':>10} {'sync share':>11}")
        for mode in modes:
            share = "" if mode == "alone" else f"{100 * (med[mode] - med['alone']) / med[mode]:>10.2f}%"
            print(f"{mode:<12} {med[mode] * 1e3:>10.1f} {share}")
        print("goal: sync share < 2%")
    grad_sync.close()
    td.destroy_process_group()


if __name__ == "__main__":
    main()
