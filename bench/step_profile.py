"""Where a small model's supernet training step goes: torch.profiler over real ``train_one_epoch`` steps.

    python bench/step_profile.py                  # the demo level-2 supernet, batch 32, one thread
    python bench/step_profile.py --preset cifar --batch 128

Runs the real loop (loader, path sampler, masked AdamW update) for ``--steps`` steps after a warm-up epoch, and
prints the step time and the operators that take the most self CPU time, as shares of the profiled total.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from glit.config import load_config
from glit.data.build import load_data, train_loader
from glit.nn import Supernet
from glit.presets import space_preset
from glit.recipes.common import space_for_data
from glit.recipes.train_supernet import SupernetStep, path_sampler
from glit.train.dist import Dist
from glit.train.loop import train_one_epoch
from glit.train.optim import make_optimizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="demo")
    p.add_argument("--data")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    overrides = [f"supernet.optim.batch_size={args.batch}", "data.workers=0"]
    cfg = load_config(args.preset, overrides=overrides)
    if args.data:
        cfg.data.source, cfg.data.root = "folder", args.data
    data = load_data(cfg)
    space = space_for_data(space_preset(cfg.preset, 2), data.num_classes)
    o = cfg.supernet.optim
    loader = train_loader(cfg, data.fit.subset(range(min(len(data.fit), args.batch * args.steps))),
                          space.family.img_size, args.batch)
    model = Supernet(space)
    optimizer = make_optimizer(model, o)
    step = SupernetStep(o, cfg.aug, data.num_classes, cfg.seed, sample=path_sampler(space, cfg.seed))
    train_one_epoch(model, loader, optimizer, 0, step, Dist())  # warm-up: allocator, caches, masks
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_one_epoch(model, loader, optimizer, 1, step, Dist())
    per_step = (time.perf_counter() - start) / len(loader)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.preset} level-2 supernet, batch {args.batch}, {args.threads} thread(s): {per_step * 1e3:.1f} ms "
          f"per step (profiled, {len(loader)} steps)")
    print(f"{'operator':<44} {'self CPU %':>10} {'calls/step':>10}")
    for e in events[:20]:
        print(f"{e.key[:44]:<44} {100 * e.self_cpu_time_total / total:>9.1f}% {e.count / len(loader):>10.1f}")


if __name__ == "__main__":
    main()
