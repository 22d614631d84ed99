"""How should ``glit truth`` use the cores: one worker of all threads, or one single-threaded worker per core?

Trains the same first ``--archs`` architectures of a preset's ground-truth sample for ``--epochs`` epochs, once with
``--jobs 1 --threads C`` and once with ``--jobs C --threads 1`` (C = the cores), each into a fresh folder, and prints
the wall time of each and their ratio. Both arms run the real ``glit truth`` command, data loading included.

    python bench/truth_workers.py --data data/cifar10-jpg            # cifar, 2 architectures, 1 epoch
    python bench/truth_workers.py --preset demo --archs 4 --epochs 5

The arms run one after the other (never together), so the figure is exposed to the machine's noise: repeat it with
``--repeats`` and read the spread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def arm(preset: str, data: str | None, archs: int, epochs: int, jobs: int, threads: int, out: Path) -> float:
    command = [sys.executable, "-m", "glit", "truth", preset, "--out", str(out), "--archs", str(archs),
               "--jobs", str(jobs), "--threads", str(threads), "--set", f"train.epochs={epochs}"]
    if data:
        command += ["--data", data]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar")
    p.add_argument("--data", help="ImageFolder tree (cifar: the CIFAR-10 tree)")
    p.add_argument("--archs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    cores = os.cpu_count() or 1
    print(f"{args.preset}: {args.archs} architectures x {args.epochs} epochs, {cores} cores")
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            one = arm(args.preset, args.data, args.archs, args.epochs, 1, cores, Path(tmp) / "one")
            many = arm(args.preset, args.data, args.archs, args.epochs, cores, 1, Path(tmp) / "many")
        print(f"repeat {r + 1}: 1 worker x {cores} threads {one:.1f} s, {cores} workers x 1 thread {many:.1f} s: "
              f"ratio {one / many:.2f} (above 1: the single-threaded workers are faster)", flush=True)


if __name__ == "__main__":
    main()
