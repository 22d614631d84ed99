"""A small ImageFolder tree that is not CIFAR-10 training data: data no glit preset was tuned for.

Takes ``--per-class`` images of each class from an ImageFolder tree's evaluation split (CIFAR-10's ``test/``: images
that no ``cifar`` run trains on), converts them to grayscale, and writes ``OUT/train/<class>/`` and
``OUT/val/<class>/`` (``--val-share`` of each class in ``val``), choosing and splitting with a fixed seed.

    python bench/make_tree.py --source data/cifar10-jpg --out data/gray4k --per-class 400
    glit run cifar --data data/gray4k --out runs/gray4k

The images stay outside the repository (``data/`` and ``runs/`` are ignored); only figures measured on them belong
in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, required=True, help="an ImageFolder tree with val/ or test/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-class", type=int, default=400)
    p.add_argument("--val-share", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    split = next((args.source / s for s in ("val", "test") if (args.source / s).is_dir()), None)
    if split is None:
        raise SystemExit(f"{args.source}: no val/ or test/ folder")
    if args.out.exists():
        raise SystemExit(f"{args.out}: exists; choose another --out")
    total = 0
    for folder in sorted(d for d in split.iterdir() if d.is_dir()):
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        random.Random(f"{args.seed}:{folder.name}").shuffle(files)
        chosen = files[:args.per_class]
        n_val = round(args.val_share * len(chosen))
        for i, file in enumerate(chosen):
            target = args.out / ("val" if i < n_val else "train") / folder.name / f"{file.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(file) as img:
                img.convert("L").save(target)
        total += len(chosen)
    print(f"{args.out}: {total} grayscale images from {split} ({args.val_share:.0%} of each class in val/)")


if __name__ == "__main__":
    main()
