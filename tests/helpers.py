"""Shared pieces of the end-to-end tests: the real CLI in a subprocess, small real ImageFolder trees, and comparisons
of checkpoints and metrics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

TIMING_KEYS = ("images_per_s", "seconds")  # machine-dependent metrics: dropped when two runs are compared
WORKER = Path(__file__).with_name("ddp_worker.py")

# A small supernet run: about a second per epoch on one core.
SMALL_SUPERNET = ("--set", "supernet.optim.batch_size=64", "--set", "supernet.eval_archs=1",
                  "--set", "data.search_size=200", "--set", "supernet.bn_batches=2")
SMALL_TRAIN = ("--set", "train.batch_size=64",)


def cli_env(**extra: str) -> dict[str, str]:
    """The parent environment without any torchrun variables, with one intra-op thread (2 loaded cores)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
           and not k.startswith("TORCHELASTIC")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def glit_command(*args) -> list[str]:
    return [sys.executable, "-m", "glit", *map(str, args)]


def run_glit(*args, timeout: float = 300, env: dict | None = None, cwd: Path | None = None
             ) -> subprocess.CompletedProcess:
    """``python -m glit ARGS`` in a subprocess; the CompletedProcess with text stdout and stderr."""
    return subprocess.run(glit_command(*args), capture_output=True, text=True, env=env or cli_env(), timeout=timeout,
                          cwd=cwd)


def torchrun(*args, nproc: int = 2, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node N ARGS`` (gloo on CPU, a free rendezvous port on loopback)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env or cli_env(), timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2 and a single stderr line (no traceback) that contains every needle."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def demo_arch_file(path: Path, seed: int = 0) -> Path:
    """A level-2 demo architecture (8 px, patch 2, D 48, H 3, depth 4, 10 classes) sampled with ``seed``."""
    from glit.presets import space_preset

    path.write_text(space_preset("demo", 2).sample(random.Random(seed)).to_json())
    return path


def demo_landmarks_file(path: Path, n: int = 4, seed: int = 0) -> Path:
    """A truth file of ``n`` level-2 demo architectures with made-up, distinct top-1 (``supernet.landmarks``)."""
    from glit.presets import space_preset

    rng = random.Random(seed)
    rows = [{"arch": space_preset("demo", 2).sample(rng).to_dict(), "seed": 0, "top1": 40.0 + 3 * i} for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_timings(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in metrics]


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_identical(a, b, where: str = "") -> None:
    """Nested dicts, lists and tensors are equal, tensors bit for bit (dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, sorted(map(str, a)), sorted(map(str, b)))
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def digit_images(digit: int, count: int, offset: int = 0) -> list[np.ndarray]:
    """Real 8x8 handwritten digits from scikit-learn (0..16 scaled to 0..255), as uint8 arrays."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[bunch.target == digit][offset:offset + count]
    assert len(images) == count, "not enough digits of this class"
    return [(img * (255 / 16)).round().astype(np.uint8) for img in images]


def write_image_folder(root: Path, classes: tuple[int, ...] = (0, 1, 2), train_per_class: int = 8,
                       val_per_class: int = 4) -> Path:
    """An ImageFolder tree ``root/{train,val}/digit_<d>/*`` of real digits: even files are grayscale 12x12 PNGs,
    odd files tinted RGB 8x8 JPEGs. Returns ``root``."""
    for split, count, offset in (("train", train_per_class, 0), ("val", val_per_class, train_per_class)):
        for digit in classes:
            folder = root / split / f"digit_{digit}"
            folder.mkdir(parents=True)
            for i, pixels in enumerate(digit_images(digit, count, offset)):
                gray = Image.fromarray(pixels)  # uint8 (H, W): mode L
                if i % 2 == 0:
                    gray.resize((12, 12), Image.Resampling.BILINEAR).save(folder / f"{i:03d}.png")
                else:
                    rgb = Image.merge("RGB", (gray, gray.point(lambda v: v // 2), ImageOps.invert(gray)))
                    rgb.save(folder / f"{i:03d}.jpg", quality=95)
    return root


def kill_when_exists(args, marker: Path, timeout: float = 600, cwd: Path | None = None) -> None:
    """Start ``glit ARGS`` (in ``cwd``) and SIGKILL it as soon as ``marker`` exists, asserting it was still running
    then."""
    proc = subprocess.Popen(glit_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(),
                            cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {marker.name} appeared"
            assert time.monotonic() < deadline, f"no {marker.name} in time"
            time.sleep(0.005)
        running = proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    assert running, f"the run had already finished when {marker.name} appeared"
    assert proc.returncode == -signal.SIGKILL


def block(g, qkv, mlp, conv, kernel, op=None):
    """A block's genes in the order the tests write them (G, qkv_ratio, mlp_ratio, conv_ratio, kernel_size, local_op),
    by name, so that a gene added to ``glit.genes`` changes this helper, not every test. A block with a kernel has a
    local part, whose ``local_op`` is conv1d unless ``op`` says otherwise (as an architecture stores it)."""
    from glit.space import BlockGenes

    op = op or ("conv1d" if kernel is not None else None)
    return BlockGenes(num_global_heads=g, qkv_ratio=qkv, mlp_ratio=mlp, conv_ratio=conv, kernel_size=kernel,
                      local_op=op)


def measured_macs(model: torch.nn.Module, family) -> dict[str, float]:
    """FlopCounterMode's totals / 2, per module name (and 'total'), for one image on the math attention backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, family.in_chans, family.img_size, family.img_size)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    root = type(model).__name__
    counts = counter.get_flop_counts()
    macs = {name.removeprefix(root).lstrip("."): sum(ops.values()) / 2 for name, ops in counts.items()}
    macs["total"] = counter.get_total_flops() / 2
    return macs
