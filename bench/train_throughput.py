"""Training throughput and model FLOP utilisation (MFU), measured side by side in one run.

MFU = achieved FLOP/s / matmul peak FLOP/s, where achieved = images/s * 6 * MACs (exact convention): a training
step does about 2 MACs of backward per MAC of forward, and a MAC is 2 FLOP. The peak is a large square matmul in
the same dtype, measured in this process right before and after each model (the best of the two is used), so a
noisy, shared machine moves both numbers together.

    python bench/train_throughput.py                       # CPU: GLiT-Tiny at 224 px and a cifar arch, fp32 + bf16
    python bench/train_throughput.py --device cuda --batch 256 --dtypes bf16
    python bench/train_throughput.py --models cifar --dtypes fp32 --compile    # eager and compiled, side by side

Goal on CPU: GLiT-Tiny (batch 16, 224 px, fp32) at >= 65% of the fp32 matmul peak. The authors' model code reaches
about 59% on our 2-core machine.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

import glit
from glit.presets import arch_preset, space_preset

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peak(dtype: torch.dtype, device: str, n: int = 2048, seconds: float = 2.0) -> float:
    """Best FLOP/s of an n x n x n matmul over ``seconds``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sync(device)
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t))
    return best


def train_rate(arch, dtype_name: str, device: str, batch: int, steps: int, warmup: int,
               compiled: bool = False) -> float:
    """Images/s of forward, backward and AdamW step; bf16 runs under autocast with fp32 weights. ``compiled``:
    ``model.compile()`` first, as ``train.compile`` does (the warm-up steps include the compilation)."""
    model = glit.build_model(arch, drop_path=0.1).to(device)
    if compiled:
        model.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    fam = arch.family
    x = torch.randn(batch, 3, fam.img_size, fam.img_size, device=device)
    y = torch.randint(0, fam.num_classes, (batch,), device=device)
    enabled = dtype_name != "fp32"

    def step():
        with torch.autocast(torch.device(device).type, dtype=DTYPES[dtype_name], enabled=enabled):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return batch / timed(step, device, steps, warmup)


def timed(fn, device: str, repeats: int, warmup: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed ones (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="batch for GLiT-Tiny at 224 px")
    parser.add_argument("--cifar-batch", type=int, default=128)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", default="tiny,cifar", help="tiny (GLiT-Tiny released), cifar (a cifar sample)")
    parser.add_argument("--compile", action="store_true", help="also each model compiled (train.compile)")
    args = parser.parse_args()
    import random

    cifar_arch = space_preset("cifar", 2).sample(random.Random(0))
    models = {"tiny": ("glit-tiny-released", arch_preset("glit-tiny-released"), args.batch),
              "cifar": ("cifar sample", cifar_arch, args.cifar_batch)}
    models = [models[key] for key in args.models.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"{'model':<31} {'dtype':<5} {'batch':>5} {'MACs':>9} {'images/s':>9} {'TFLOP/s':>8} "
          f"{'peak':>8} {'MFU':>6}")
    for name, arch, batch in models:
        macs = glit.cost(arch).macs
        for dtype_name, compiled in itertools.product(args.dtypes.split(","), (False, True)[:1 + args.compile]):
            peak = matmul_peak(DTYPES[dtype_name], args.device)
            rate = train_rate(arch, dtype_name, args.device, batch, args.steps, args.warmup, compiled)
            peak = max(peak, matmul_peak(DTYPES[dtype_name], args.device))
            achieved = rate * 6 * macs
            label = name + (" (compiled)" if compiled else "")
            print(f"{label:<31} {dtype_name:<5} {batch:>5} {macs / 1e6:>8.1f}M {rate:>9.1f} "
                  f"{achieved / 1e12:>8.4f} {peak / 1e12:>8.4f} {achieved / peak:>6.1%}", flush=True)


if __name__ == "__main__":
    main()
