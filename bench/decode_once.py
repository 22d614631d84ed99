"""What ``SharedData`` saves a ``glit run``: the time to list and decode the data of one stage, and how many stages
of a run load it (every stage that trains, searches or retrains: 9 for the cifar default, plus supernet health).

    python bench/decode_once.py --preset cifar --data data/cifar10-jpg

Before ``SharedData`` every stage paid ``load`` seconds; now the run pays it once.
"""

from __future__ import annotations

import argparse
import time

from glit.config import load_config
from glit.data.build import SharedData, load_data

STAGES = 9  # 1-supernet, 2-search, 4-supernet, 5-search, 6-random supernet and search, 7-9 retrainings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar")
    p.add_argument("--data")
    args = p.parse_args()
    cfg = load_config(args.preset)
    if args.data:
        cfg.data.source, cfg.data.root = "folder", args.data
    start = time.perf_counter()
    load_data(cfg)
    once = time.perf_counter() - start
    shared = SharedData()
    start = time.perf_counter()
    for _ in range(STAGES):
        shared.get(cfg)
    stages = time.perf_counter() - start
    print(f"one load (list + decode): {once:.1f} s; {STAGES} stages without sharing: {STAGES * once:.1f} s; "
          f"with SharedData: {stages:.1f} s; saved per run: {STAGES * once - stages:.1f} s")


if __name__ == "__main__":
    main()
