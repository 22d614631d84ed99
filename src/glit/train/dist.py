"""Distributed data parallel over ``torchrun``: gloo on CPU, NCCL on GPU.

We all-reduce gradients ourselves (``GradSync``) instead of wrapping the model in ``DistributedDataParallel``. A
supernet step leaves whole parameters unused (the other paths), which DDP accepts only with
``find_unused_parameters=True`` and an extra graph traversal each step, and it uses most parameters only in part,
whose gradients are zeros off the path, which DDP would all-reduce anyway. Every rank samples the same path, so
every rank produces the same gradients in the same order during backward: ``GradSync`` sends each one's path
elements as soon as backward has produced it, in buckets, so communication overlaps the rest of backward as with
DDP. BatchNorm statistics stay per rank during an epoch, as with DDP without SyncBatchNorm, and are averaged over
ranks at the end of each epoch.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import Tensor, nn

from glit.errors import GlitError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, or run as one process."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise GlitError(f"device={device}: no CUDA GPU is available here (use device=auto or cpu)")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(device=torch.device(device if device.startswith("cuda") else "cuda" if use_cuda else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not td.is_initialized():
        td.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return Dist(rank, world, local_rank, torch.device("cuda", local_rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))  # share the cores between local ranks
    return Dist(rank, world, local_rank, torch.device("cpu"))


BUCKET_ELEMENTS = 2**22  # gradient elements per all-reduce (16 MiB in fp32; DDP's default bucket is 25 MiB)


class GradSync:
    """Average a model's gradients over ranks, overlapped with backward, sending only a supernet path's elements.

    ``with sync.backward(views):`` around the step's last backward: as backward finishes each parameter's gradient,
    a hook queues its path view (``views[p]``, ``Supernet.path_views``; the whole gradient for a parameter the path
    uses wholly, or for every parameter with ``views`` None), and every ``BUCKET_ELEMENTS`` queued elements go out
    in one asynchronous all-reduce while backward goes on. Leaving the block sends the rest, waits, and writes the
    averages back. Off the path the gradients are zeros on every rank (same path, same parameters), so they need no
    averaging: the result equals a flat all-reduce of every gradient (``tests/test_resume_ddp.py``). Backward runs
    the same graph in the same order on every rank, so every rank forms the same buckets: the collectives match.

    A step with several backward passes (the sandwich rule) calls ``sync.all(model)`` after them instead: one flat
    all-reduce of every gradient, as the hooks cannot know when a gradient is final. For more than one process only
    (``fit`` makes one when ``dist.world > 1``).
    """

    def __init__(self, model: nn.Module, dist: Dist, bucket: int = BUCKET_ELEMENTS):
        self.dist, self.bucket = dist, bucket
        self.views: dict | None = None
        self.active = False
        self.queued: list[Tensor] = []  # path views of finished gradients, not sent yet
        self.queued_elements = 0
        self.sent: list[tuple[td.Work, Tensor, list[Tensor]]] = []
        self.hooks = [p.register_post_accumulate_grad_hook(self._ready) for p in model.parameters()
                      if p.requires_grad]

    def close(self) -> None:
        """Remove the hooks (``fit`` does, when training ends)."""
        for hook in self.hooks:
            hook.remove()
        self.hooks = []

    @contextmanager
    def backward(self, views: dict | None = None):
        self.views, self.active = views or {}, True
        try:
            yield
        finally:
            self.active = False
        self._send()
        for work, flat, grads in self.sent:
            work.wait()
            flat /= self.dist.world
            _unflatten(flat, grads)
        self.sent = []

    def all(self, model: nn.Module) -> None:
        """One flat all-reduce of every gradient that exists, after backward."""
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        td.all_reduce(flat)
        flat /= self.dist.world
        _unflatten(flat, grads)

    def _ready(self, p: nn.Parameter) -> None:
        if not self.active:
            return
        view = self.views.get(p)
        self.queued.append(p.grad if view is None else view(p.grad))
        self.queued_elements += self.queued[-1].numel()
        if self.queued_elements >= self.bucket:
            self._send()

    def _send(self) -> None:
        if self.queued:
            flat = torch.cat([g.reshape(-1) for g in self.queued])
            self.sent.append((td.all_reduce(flat, async_op=True), flat, self.queued))
            self.queued, self.queued_elements = [], 0


def _unflatten(flat: Tensor, grads: list[Tensor]) -> None:
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def average_buffers(model: nn.Module, dist: Dist) -> None:
    """Average floating-point buffers (BatchNorm statistics) over ranks, so every rank ends the epoch equal."""
    if dist.world == 1:
        return
    for b in model.buffers():
        if b.is_floating_point():
            td.all_reduce(b)
            b /= dist.world


def all_sum(values: list[float], dist: Dist) -> list[float]:
    """Sum a few numbers over ranks (float64, so counts and sums of losses stay exact)."""
    if dist.world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=dist.device)
    td.all_reduce(t)
    return t.tolist()


def broadcast_object(obj, dist: Dist):
    if dist.world == 1:
        return obj
    box = [obj]
    td.broadcast_object_list(box, src=0)
    return box[0]


def barrier(dist: Dist) -> None:
    if dist.world > 1:
        td.barrier()



def all_gather_floats(mine: list[float], total: int, dist: Dist) -> list[float]:
    """Rank r holds the values of items r, r + world, ...; return all ``total`` values in order, on every rank."""
    if dist.world == 1:
        return list(mine)
    per_rank = -(-total // dist.world)
    buf = torch.full((per_rank,), float("nan"), dtype=torch.float64, device=dist.device)
    buf[:len(mine)] = torch.tensor(mine, dtype=torch.float64)
    gathered = [torch.empty_like(buf) for _ in range(dist.world)]
    td.all_gather(gathered, buf)
    return [gathered[i % dist.world][i // dist.world].item() for i in range(total)]
