"""The GPU checks of issue 14 in one run (under 8 minutes on one H200; ``bench/gpu.sh`` runs it with a time limit).

    python bench/gpu.py                       # on a GPU machine: every figure below, full sizes
    python bench/gpu.py --quick --device cpu  # a smoke run of the same code on a CPU (tiny sizes, figures meaningless)

Prints, each measured side by side in this process:

1. the bf16 matmul peak (a large square matmul; the best of several repeats);
2. GLiT-Tiny (the released architecture, 224 px) bf16 training: images/s and MFU = images/s x 6 x MACs / peak,
   with fused AdamW (goal: >= 40% of the bf16 peak on an H200);
3. the supernet/subnet step ratio: one bf16 training step of a level-2 ``tiny`` supernet on a path (with the masked
   AdamW update supernets train with) against the same step of the extracted standalone model;
4. the scoring/inference ratio: scoring one candidate as the search does (extract it, recalibrate BatchNorm on
   ``search.bn_batches`` batches, evaluate the search split) against plain inference of the same model on the split;
5. a short ``glit run tiny`` on a synthetic 224-px ImageFolder tree (or ``--data DIR``), its wall time per stage.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import glit
from glit.config import load_config
from glit.presets import arch_preset, space_preset
from glit.recipes.train_supernet import union_masks
from glit.train.bn import recalibrate_bn
from glit.train.optim import make_optimizer, masked_step

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import matmul_peak, timed, train_rate  # noqa: E402 - a sibling benchmark

QUICK_RUN = ["supernet.optim.epochs=1", "supernet.optim.batch_size=8", "supernet.eval_archs=1", "train.epochs=1",
             "train.batch_size=8", "search.population=4", "search.generations=1", "search.parents=2",
             "search.mutations=2", "search.crossovers=2", "search.topk=2", "data.search_size=20",
             "search.batch_size=16", "search.bn_batches=1", "supernet.bn_batches=1", "data.workers=2"]


def step_ratio(device: str, batch: int, archs: int, repeats: int) -> float:
    """Median over sampled paths of (supernet step with the masked update) / (extracted subnet step), bf16."""
    space = space_preset("tiny", 2)
    supernet = glit.Supernet(space).to(device)
    opt = make_optimizer(supernet, load_config("tiny").supernet.optim)
    fam = space.family
    x = torch.randn(batch, 3, fam.img_size, fam.img_size, device=device)
    y = torch.randint(0, fam.num_classes, (batch,), device=device)
    def step(model, optimizer, path):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x, path).float(), y)
        loss.backward()
        if path is None:
            optimizer.step()
        else:
            masked_step(optimizer, union_masks([model.path_masks(path)]), optimizer.step)

    rng, ratios = random.Random(0), []
    for _ in range(archs):
        arch = space.sample(rng)
        subnet = supernet.extract(arch)
        sub_opt = make_optimizer(subnet, load_config("tiny").supernet.optim)
        big = timed(lambda a=arch: step(supernet, opt, a), device, repeats, 2)
        small = timed(lambda m=subnet, o=sub_opt: step(m, o, None), device, repeats, 2)
        ratios.append(big / small)
    return statistics.median(ratios)


@torch.no_grad()
def scoring_ratio(device: str, images: int, batch: int, bn_batches: int) -> float:
    """(extract + BatchNorm recalibration + evaluation of a candidate) / (plain inference of it), bf16."""
    space = space_preset("tiny", 2)
    supernet = glit.Supernet(space).to(device).eval()
    fam = space.family
    xs = [torch.randn(batch, 3, fam.img_size, fam.img_size, device=device) for _ in range(max(1, images // batch))]
    arch = space.sample(random.Random(1))
    model = supernet.extract(arch).eval()

    def infer(m):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            for x in xs:
                m(x)

    def score():
        candidate = supernet.extract(arch)
        recalibrate_bn(candidate, None, iter(xs[:bn_batches]))
        infer(candidate.eval())

    return timed(score, device, 3, 1) / timed(lambda: infer(model), device, 3, 1)


def synthetic_tree(root: Path, classes: int, per_class: int, size: int = 224) -> Path:
    """Random-noise images, one colour cast per class (learnable), as root/{train,val}/<class>/*.jpg."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", max(2, per_class // 4))):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            tint = rng.integers(0, 256, 3)
            for i in range(n):
                pixels = np.clip(rng.normal(tint, 60, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    return root


def short_run(data: str | None, device: str, quick: bool) -> dict:
    """``glit run tiny`` with short settings; per-stage wall time from the stages' metrics and the total."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = data or str(synthetic_tree(Path(tmp) / "tree", 4 if quick else 10, 8 if quick else 64))
        out = Path(tmp) / "run"
        # quick: no repeated augmentation and fp32 (bf16 is emulated, slowly, on most CPUs); the full run keeps the
        # whole DeiT recipe (RandAugment, Mixup, CutMix, erasing, repeated augmentation, bf16 autocast)
        sets = QUICK_RUN + ["aug.repeated_aug=1", "train.amp=none", "supernet.optim.amp=none"] if quick else \
            [s.replace("batch_size=8", "batch_size=64") for s in QUICK_RUN]
        command = [sys.executable, "-m", "glit", "run", "tiny", "--data", tree, "--out", str(out),
                   "--set", f"device={device}", *(a for s in sets for a in ("--set", s))]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed", "wall_s": wall}
        stages = {}
        for metrics in sorted(out.rglob("metrics.jsonl")):
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            stages[str(metrics.parent.relative_to(out))] = round(sum(r["seconds"] for r in rows), 1)
        summary = json.loads((out / "summary.json").read_text())
        return {"wall_s": round(wall, 1), "training_s_per_stage": stages,
                "top1": {k: summary[k]["top1"] for k in ("searched", "baseline", "random")}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the code, not a measurement")
    p.add_argument("--data", help="an ImageFolder tree for the short glit run (default: synthetic 224 px)")
    p.add_argument("--checks", default="1,2,3,4,5", help="which of the five checks to run (default: all)")
    args = p.parse_args()
    q, dev, checks = args.quick, args.device, {int(c) for c in args.checks.split(",")}
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, {name}, device {dev}{' (quick: figures meaningless)' if q else ''}",
          flush=True)
    size, seconds = (512, 0.5) if q else (8192, 3.0)
    if checks & {1, 2}:
        peak = matmul_peak(torch.bfloat16, dev, n=size, seconds=seconds)
        print(f"1. bf16 matmul peak: {peak / 1e12:.2f} TFLOP/s", flush=True)
    if 2 in checks:
        arch = arch_preset("glit-tiny-released")
        rate = train_rate(arch, "bf16", dev, 2 if q else 256, 2 if q else 20, 1 if q else 5)
        peak = max(peak, matmul_peak(torch.bfloat16, dev, n=size, seconds=seconds))
        mfu = rate * 6 * glit.cost(arch).macs / peak
        print(f"2. GLiT-Tiny bf16 training: {rate:.1f} images/s, MFU {mfu:.1%} of the bf16 peak (goal >= 40%)",
              flush=True)
    if 3 in checks:
        ratio = step_ratio(dev, 2 if q else 128, 1 if q else 6, 2 if q else 10)
        print(f"3. supernet/subnet step ratio (tiny level 2, masked update, bf16): {ratio:.3f}", flush=True)
    if 4 in checks:
        scoring = scoring_ratio(dev, 4 if q else 2048, 2 if q else 256, 1 if q else 2)
        print(f"4. scoring/inference ratio (extract + BN recalibration + eval vs plain eval): {scoring:.3f}",
              flush=True)
    if 5 in checks:
        print(f"5. short glit run tiny: {json.dumps(short_run(args.data, dev, q))}", flush=True)


if __name__ == "__main__":
    main()
