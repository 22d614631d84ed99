"""Is a search limited by its small search split, or by its supernet? Score candidates of a finished search again,
with the same supernet and BatchNorm recalibration, on training images that neither the supernet nor the search
has seen (those left out by ``data.train_subset``), and compare the two rankings.

    python bench/supernet_ranking.py --run runs/cifar                     # both levels of a glit run
    python bench/supernet_ranking.py --run runs/cifar --level 1 --images 5000 --top 12 --bottom 3 \
        --distribution 0,0,0,3,3,3 --distribution 3,3,3,3,3,3
    python bench/supernet_ranking.py --run runs/cifar --level 1 --supernet runs/cifar/6-random/supernet

For each candidate it prints the search score (``data.search_size`` images) and the score on ``--images`` unseen
images; then the Spearman correlation of the two. A high correlation with a flat unseen score across the top
candidates means the supernet, not the split, cannot tell them apart. ``--distribution`` adds level-1 members by
their global heads per block (level 1 only), with the level-1 detail genes. ``--supernet`` scores them with another
supernet that holds them, such as the whole-space one. Needs an ImageFolder run with ``data.train_subset`` set.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from scipy import stats

from glit import Arch, cost
from glit.config import Config, apply
from glit.data.build import eval_loader, load_data
from glit.nn import Supernet
from glit.presets import level1_part
from glit.scoring.supernet import Batches, score
from glit.space import SearchSpace
from glit.train.checkpoint import load_checkpoint

LEVELS = {1: ("1-supernet", "2-search"), 2: ("4-supernet", "5-search")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="a glit run folder")
    p.add_argument("--level", type=int, choices=(1, 2), action="append", help="default: both")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--bottom", type=int, default=3)
    p.add_argument("--distribution", action="append", default=[], help="level 1: global heads per block, 0,0,3,3")
    p.add_argument("--supernet", type=Path, help="score with this supernet instead of the level's own (it must hold "
                   "the candidates, e.g. the run's whole-space supernet 6-random/supernet)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = None  # both levels use the run's data and splits: read them once
    for level in args.level or (1, 2):
        supernet_dir, search_dir = (args.run / d for d in LEVELS[level])
        supernet_dir = args.supernet or supernet_dir
        ckpt = load_checkpoint(supernet_dir / "checkpoint.pt")
        cfg = apply(Config(), ckpt["config"], str(supernet_dir))
        space = SearchSpace.from_dict(ckpt["space"])
        model = Supernet(space)
        model.load_state_dict(ckpt["model"])
        if data is None:
            data = load_data(cfg)
            if len(data.unused) < args.images:
                raise SystemExit(f"only {len(data.unused)} training images lie outside data.train_subset; "
                                 "ask for fewer --images")
        img, device = space.family.img_size, torch.device("cpu")
        calib = Batches(eval_loader(cfg, data.fit, img, cfg.search.batch_size), cfg.search.bn_batches, device)
        unseen = Batches(eval_loader(cfg, data.unused.subset(range(args.images)), img, cfg.search.batch_size), None,
                         device)
        rows = sorted((json.loads(line) for line in (search_dir / "candidates.jsonl").read_text().splitlines()),
                      key=lambda r: -r["score"])
        picked = [(f"top {i + 1}", r) for i, r in enumerate(rows[:args.top])]
        picked += [(f"bottom {i + 1}", r) for i, r in enumerate(rows[::-1][:args.bottom])]
        named = [(name, Arch.from_dict(r["arch"]), r["score"]) for name, r in picked]
        for text in args.distribution if level == 1 else ():
            g = [int(x) for x in text.split(",")]
            member = level1_part(cfg.preset, space).fix(num_global_heads=g)  # a supernet over any space
            named.append((f"G={g}", member.sample(random.Random(0)), None))
        print(f"level {level}: {supernet_dir}; search split {cfg.data.search_size} images, unseen {args.images}")
        print(f"  {'candidate':<12} {'global heads':<22} {'MACs':>8} {'search':>7} {'unseen':>7}")
        pairs = []
        for name, arch, recorded in named:
            s = score(model, arch, calib, unseen)
            g = [b.num_global_heads for b in arch.blocks]
            rec = "-" if recorded is None else f"{recorded:.2f}"
            print(f"  {name:<12} {str(g):<22} {cost(arch).macs / 1e6:>7.2f}M {rec:>7} {s:>7.2f}", flush=True)
            if recorded is not None:
                pairs.append((recorded, s))
        if len(pairs) > 2:
            print(f"  Spearman(search, unseen) over the {len(pairs)} searched candidates: "
                  f"{stats.spearmanr(*zip(*pairs)).statistic:.2f}")


if __name__ == "__main__":
    main()
