"""How far the ``cifar`` model's training MFU can go on this CPU: the matmuls' own efficiency at its shapes.

``bench/train_throughput.py`` measures MFU (achieved FLOP/s over a large square matmul's peak). A ``cifar`` model is
small (D 96, 65 tokens, head width 32): its matmuls have inner sizes of 10-576, far from the 2048 of the peak. This
script splits one training step (forward, backward, AdamW; batch 128; fp32) of the same sampled ``cifar``
architecture with ``torch.profiler``:

- the time and FLOPs of every matrix product (``aten::mm``, ``addmm``, ``bmm``; the profiler's FLOP counts), so their
  own efficiency against the peak, measured in the same process;
- the time of everything else (norms, activations, softmax, the depthwise convolution, AdamW, copies);
- then, outside the model, each distinct matmul shape of the step timed alone: what the BLAS gives at that shape.

MFU = (model FLOPs / step time) / peak. Even with every non-matmul operation free, MFU could not exceed the matmuls'
efficiency at these shapes (times the share of the model's FLOPs that are matmuls): that is the bound printed.

    python bench/mfu_bound.py                    # cifar sample, batch 128, this machine's threads
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

import glit
from glit.cost import cost
from glit.presets import space_preset
from train_throughput import matmul_peak

GEMMS = ("aten::mm", "aten::addmm", "aten::bmm")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    arch = space_preset("cifar", 2).sample(random.Random(0))  # bench/train_throughput.py's cifar sample
    model = glit.build_model(arch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    for _ in range(3):
        step()
    peak = matmul_peak(torch.float32, "cpu")
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    step_s = sorted(times)[len(times) // 2]  # the median step, as bench/train_throughput.py
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages(group_by_input_shape=True)
    total_us = sum(e.self_cpu_time_total for e in events)
    gemm_us = sum(e.self_cpu_time_total for e in events if e.key in GEMMS)
    gemm_flops = sum(e.flops for e in events if e.key in GEMMS)
    shapes = {}  # (op, input shapes as text) -> [calls per step, input shapes]
    for e in events:
        if e.key in GEMMS:
            shapes.setdefault((e.key, str(e.input_shapes)), [0, e.input_shapes])[0] += e.count // args.steps
    model_flops = 6 * cost(arch).macs * args.batch
    peak = max(peak, matmul_peak(torch.float32, "cpu"))  # the best of before and after, as train_throughput
    gemm_eff = gemm_flops / args.steps / (gemm_us / args.steps * 1e-6) / peak
    mfu = model_flops / step_s / peak
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cifar sample {cost(arch).macs / 1e6:.1f} M "
          f"MACs, batch {args.batch}; fp32 matmul peak {peak / 1e12:.3f} TFLOP/s")
    print(f"step {step_s * 1e3:.1f} ms (unprofiled): MFU {mfu:.1%}")
    print(f"profiled: matmuls {gemm_us / total_us:.1%} of the self CPU time, at {gemm_eff:.1%} of the peak; "
          f"their FLOPs are {gemm_flops / args.steps / model_flops:.0%} of the model's 6 x MACs")
    print(f"bound: MFU with every non-matmul operation free <= {gemm_eff * model_flops * args.steps / gemm_flops:.1%}")
    merged = defaultdict(float)  # operator -> self CPU time over all its input shapes
    for e in events:
        if e.key not in GEMMS:
            merged[e.key] += e.self_cpu_time_total
    print("largest non-matmul operators (share of self CPU time): " + ", ".join(
        f"{k} {v / total_us:.1%}" for k, v in sorted(merged.items(), key=lambda kv: -kv[1])[:8]))
    print(f"\n{'op':<12} {'calls/step':>10} {'alone GFLOP/s':>14} {'of peak':>8}  input shapes")
    for (op, text), (calls, input_shapes) in sorted(shapes.items()):
        rate = time_alone(op, input_shapes)
        print(f"{op:<12} {calls:>10} {rate / 1e9:>14.1f} {rate / peak:>8.1%}  {text}")


def time_alone(op: str, shapes: list[list[int]]) -> float:
    """FLOP/s of one matmul of these input shapes, alone (median of 20 calls after warm-up)."""
    tensors = [torch.randn(*s) if s else None for s in shapes]
    if op == "aten::addmm":
        bias, a, b = tensors[:3]
        fn, flops = (lambda: torch.addmm(bias, a, b)), 2 * a.shape[0] * a.shape[1] * b.shape[1]
    elif op == "aten::mm":
        a, b = tensors[:2]
        fn, flops = (lambda: torch.mm(a, b)), 2 * a.shape[0] * a.shape[1] * b.shape[1]
    else:
        a, b = tensors[:2]
        fn, flops = (lambda: torch.bmm(a, b)), 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    for _ in range(3):
        fn()
    times = []
    for _ in range(20):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return flops / sorted(times)[len(times) // 2]


if __name__ == "__main__":
    main()
