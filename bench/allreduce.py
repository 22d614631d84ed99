"""What the gradient all-reduce costs against a training step, at the ``tiny`` preset's size (issue 14).

glit synchronises gradients with one flat all-reduce after backward (``glit.train.dist.sync_grads``), not bucketed and
overlapped with backward as DistributedDataParallel does. This measures whether that matters: in one run, on every
rank, the median time of ``sync_grads`` on the gradients of a level-2 ``tiny`` supernet path (the most a supernet step
synchronises: every parameter of the path) and of one training step of the same path, and prints their ratio.

    torchrun --nproc-per-node 2 bench/allreduce.py                    # CPU, gloo (2 ranks share this machine's cores)
    torchrun --nproc-per-node 8 bench/allreduce.py --batch 128        # one node of GPUs, NCCL

On CPU the step is slow and the ratio says little about GPUs; the figure that matters is the GPU one (one process per
GPU, at least 2 GPUs: NCCL cannot put two ranks on one device). The goal is under 2% of a step.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.distributed as td

import glit
from glit.cost import cost
from glit.presets import space_preset
from glit.train.dist import init_distributed, sync_grads


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up, every rank in step."""
    fn()
    times = []
    for _ in range(repeats):
        td.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8, help="images per rank and step (default 8)")
    p.add_argument("--repeats", type=int, default=5)
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

    def step():
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(images, arch), labels)
        loss.backward()

    step()
    grads = sum(p.grad.numel() for p in model.parameters() if p.grad is not None)
    step_s = timed(step, dist.device, args.repeats)
    sync_s = timed(lambda: sync_grads(model, dist), dist.device, args.repeats)
    if dist.main:
        backend = td.get_backend()
        print(f"{dist.world} ranks ({backend}, {dist.device.type}); a tiny supernet path: {grads:,} gradients "
              f"({grads * 4 / 2**20:.1f} MiB fp32; the path itself has {cost(arch).params:,} parameters, the rest "
              f"are zeros off the path), batch {args.batch} per rank")
        print(f"training step (forward + backward): {step_s * 1e3:.1f} ms")
        print(f"flat all-reduce of the gradients:   {sync_s * 1e3:.1f} ms")
        print(f"all-reduce / (step + all-reduce):   {100 * sync_s / (step_s + sync_s):.2f}%  (goal < 2%)")
    td.destroy_process_group()


if __name__ == "__main__":
    main()
