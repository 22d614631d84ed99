"""Supernet variants, each trained with one or more seeds and ranked with ``glit rank`` against one ground truth.

    python bench/supernet_variants.py --preset cifar --data data/cifar10-jpg --truth bench/truth/cifar.jsonl \
        --out runs/variants --json runs/variants.json            # every variant, seed 0, one after the other
    python bench/supernet_variants.py ... --only whole,element --seeds 0,1 --jobs 16 --threads 1   # a GPU machine

Each (variant, seed) is a ``glit train-supernet --level 2`` run (the whole space, as the cifar default's level-1
supernet and the random baseline's are) with the variant's config overrides and ``--set seed=S``, into
``OUT/<supernet>-s<S>/`` (resumed if it exists, so the script can be stopped and run again), then ``glit rank
--json`` of it into ``rank-<variant>.json`` there: whole-space architectures scored by their own path, level-1 members
by their distribution. Variants that differ only in how they score share one supernet. ``--jobs`` runs that many
(variant, seed) jobs at once, each its own processes with ``--threads`` intra-op threads (on one GPU they share it).
The cost is the supernet's training time (the sum of its epochs' seconds, on this machine, whatever else ran beside
it): compare costs only between jobs that ran alike. Results (pairs included) go to ``--json``, which
``bench/rank_table.py --scores`` can re-judge against another truth file. The table gives each figure's mean over
the seeds, and the seeds' values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ELEMENT, BUDGET = "supernet.adam_step=element", "supernet.under_budget=true"
PER_HEADS = "supernet.local_weights=per_heads"
HEADS, PLAIN = "supernet.sampling=heads", "supernet.masked_update=false"
# name -> (supernet folder, train-supernet overrides, rank overrides, scoring, level1). Each changes one thing
# against the baseline, at about its cost unless said; the combinations of issue 26 follow.
VARIANTS = {
    "whole": ("whole", [], [], "arch", False),  # the baseline: the cifar default's whole-space supernet until issue 26
    "whole-level1": ("whole", [], [], "arch", True),  # its level-1 members, scored with the level-1 details
    "whole-level1-marginal": ("whole", [], [], "marginal", True),  # ... scored by marginalising the details
    "whole-bn8": ("whole", [], ["search.bn_batches=8"], "arch", False),  # 8 BatchNorm batches instead of 2
    "paper": ("paper", ["search.level2_space=paper"], [], "arch", False),  # the authors' 9 options per block
    "sandwich": ("sandwich", ["supernet.sandwich=1", "supernet.optim.epochs=2"], [], "arch", False),  # ~3x a step
    "split4000": ("split4000", ["data.search_size=4000"], [], "arch", False),  # a 4x larger search split
    # issue 26's suspects, one change each
    "element": ("element", [ELEMENT], [], "arch", False),  # 1: AdamW's step count per element
    "budget": ("budget", [BUDGET], [], "arch", False),  # 2: paths under the budget only
    "per_heads": ("per_heads", [PER_HEADS], [], "arch", False),  # 3: few-shot local weights
    "long": ("long", ["supernet.optim.epochs=12"], [], "arch", False),  # 4: twice the steps (twice the cost)
    "long24": ("long24", ["supernet.optim.epochs=24"], [], "arch", False),  # 4: four times the steps
    "plain": ("plain", [PLAIN], [], "arch", False),  # 5: SPOS's plain AdamW
    "heads": ("heads", [HEADS], [], "arch", False),  # found after 1-5: draws balanced over the global heads
    # combinations
    "element+budget": ("element-budget", [ELEMENT, BUDGET], [], "arch", False),
    "element+per_heads": ("element-per_heads", [ELEMENT, PER_HEADS], [], "arch", False),
    "element+budget+per_heads": ("element-budget-per_heads", [ELEMENT, BUDGET, PER_HEADS], [], "arch", False),
    "element+long": ("element-long", [ELEMENT, "supernet.optim.epochs=12"], [], "arch", False),
    "plain+budget": ("plain-budget", [PLAIN, BUDGET], [], "arch", False),
    "element+budget+long": ("element-budget-long", [ELEMENT, BUDGET, "supernet.optim.epochs=12"], [], "arch", False),
    "heads+element": ("heads-element", [HEADS, ELEMENT], [], "arch", False),
    "heads+budget": ("heads-budget", [HEADS, BUDGET], [], "arch", False),
    "heads+element+budget": ("heads-element-budget", [HEADS, ELEMENT, BUDGET], [], "arch", False),
    "heads+long": ("heads-long", [HEADS, "supernet.optim.epochs=12"], [], "arch", False),
}
FIGURES = ("kendall_tau", "kendall_tau_mixes", "local_bias", "precision_at_5", "regret")


def job(name: str, seed: int, args) -> dict:
    """Train (or resume) one variant's supernet with one seed, and rank it, in a process of its own (``--one``);
    the rank result with its cost."""
    folder, train_sets, rank_sets, *_ = VARIANTS[name]
    out = Path(args.out) / f"{folder}-s{seed}"
    result_file = out / f"rank-{name}.json"
    if not result_file.exists():
        env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
        command = [sys.executable, __file__, "--one", f"{name}:{seed}", "--preset", args.preset, "--truth",
                   args.truth, "--out", args.out, *(["--data", args.data] if args.data else []),
                   *(f"--set={kv}" for kv in args.set)]
        with open(Path(args.out) / f"{folder}-s{seed}.log", "a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=log, env=env)
    r = json.loads(result_file.read_text())
    cost = sum(json.loads(line)["seconds"] for line in (out / "metrics.jsonl").read_text().splitlines())
    return {**r, "variant": name, "seed": seed, "supernet_seconds": cost, "train_overrides": train_sets,
            "rank_overrides": rank_sets}


def one(spec: str, args) -> None:
    """``--one NAME:SEED``: train the supernet and rank it in this process, decoding the data once for both."""
    from glit.config import load_config
    from glit.data.build import SharedData, load_data
    from glit.recipes.rank import rank
    from glit.recipes.train_supernet import train_supernet

    name, seed = spec.split(":")
    folder, train_sets, rank_sets, scoring, level1 = VARIANTS[name]
    out = Path(args.out) / f"{folder}-s{seed}"
    cfg = load_config(args.preset, None, [*args.set, *train_sets, f"seed={seed}", "level=2"])
    if args.data:
        cfg.data.source, cfg.data.root = "folder", args.data
    shared = SharedData()
    train_supernet(cfg, out, resume=True, shared=shared)
    r = rank(out, args.truth, args.data, overrides=rank_sets, level1=level1, progress=False, scoring=scoring,
             data=load_data(cfg, shared) if not rank_sets else None)
    (out / f"rank-{name}.json").write_text(json.dumps(r))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar")
    p.add_argument("--data", help="the ImageFolder tree (none for demo)")
    p.add_argument("--truth", required=True)
    p.add_argument("--out", required=True, help="folder for the supernets")
    p.add_argument("--json", help="write every result (pairs included) here")
    p.add_argument("--only", help="comma-separated variant names (default: all)")
    p.add_argument("--seeds", default="0", help="supernet seeds, comma-separated (default: 0)")
    p.add_argument("--jobs", type=int, default=1, help="(variant, seed) jobs at once (default: 1)")
    p.add_argument("--threads", type=int, help="intra-op threads per job (default: torch's)")
    p.add_argument("--set", action="append", default=[], help="an override for every supernet (e.g. for a test)")
    p.add_argument("--one", metavar="NAME:SEED", help=argparse.SUPPRESS)  # one job, in this process
    args = p.parse_args()
    if args.one:
        return one(args.one, args)
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    todo = [(name, seed) for seed in seeds for name in names]
    results: dict[str, list[dict]] = {name: [] for name in names}
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(job, name, seed, args): (name, seed) for name, seed in todo}
        for future in as_completed(futures):
            name, seed = futures[future]
            try:
                results[name].append(future.result())
            except subprocess.CalledProcessError as err:
                print(f"{name} seed {seed}: failed ({err}); see {args.out}", file=sys.stderr, flush=True)
            if args.json:  # after every job: a stopped sweep keeps what it finished
                Path(args.json).write_text(json.dumps(results, indent=1))
    print(table(results))


def table(results: dict[str, list[dict]]) -> str:
    """One row per variant: the mean over its seeds of each figure, with the seeds' values when there are several."""
    lines = ["| variant | seeds | supernet cost (s) | ranked | Kendall τ | τ mixes | local bias | precision@5 | "
             "regret |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        if not runs:
            continue
        runs = sorted(runs, key=lambda r: r["seed"])
        cells = [fmt([r[k] for r in runs]) for k in FIGURES]
        cost = statistics.fmean(r["supernet_seconds"] for r in runs)
        lines.append(f"| {name} | {','.join(str(r['seed']) for r in runs)} | {cost:.0f} | {runs[0]['n']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt(values: list) -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "–"
    mean = f"{statistics.fmean(values):+.2f}"
    return mean if len(values) == 1 else f"{mean} ({', '.join(f'{v:+.2f}' for v in values)})"


if __name__ == "__main__":
    main()
