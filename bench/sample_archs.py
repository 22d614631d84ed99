"""Unsearched architectures: draw members of a preset's whole space uniformly under ``glit run``'s budget, and
write each as an architecture file. Retrained with ``glit train``, they show what the search space gives without
any search: the yardstick for the searched and random-search winners of ``glit run``.

    python bench/sample_archs.py --preset cifar --n 3 --out runs/unsearched
    for i in 0 1 2; do glit train --preset cifar --data data/cifar10-jpg --arch runs/unsearched/arch$i.json \
        --out runs/unsearched/train$i; done

Draw i uses ``random.Random(f"unsearched:{seed}:{i}")`` and is redrawn until it meets the budget, so the files
depend only on the preset, the seed and i.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from glit import cost
from glit.config import run_preset
from glit.presets import space_preset
from glit.recipes.search import make_budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cifar")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    space = space_preset(args.preset, 2)
    budget = make_budget(run_preset(args.preset), space)  # as glit run: the DeiT-style MACs unless the preset sets one
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        rng = random.Random(f"unsearched:{args.seed}:{i}")
        arch = space.sample(rng)
        while not budget(arch):
            arch = space.sample(rng)
        (args.out / f"arch{i}.json").write_text(arch.to_json())
        c = cost(arch)
        print(f"arch{i}.json  G {[b.num_global_heads for b in arch.blocks]}  {c.params:,} params  "
              f"{c.macs / 1e6:.2f} M MACs  (budget {budget.describe()})")


if __name__ == "__main__":
    main()
