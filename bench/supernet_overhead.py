"""Supernet overhead: one training step of ``supernet(x, arch)`` against ``supernet.extract(arch)``.

A training step is forward, cross-entropy loss, backward and an AdamW step, in train mode, on the same batch and the
same architecture. The two models run interleaved in one process (the order alternates every repeat), over several
architectures sampled from the ``cifar`` space, so that machine noise hits both alike. For each architecture the
ratio is median(supernet step) / median(subnet step); the headline figure is the median of those ratios over the
architectures. The ``paired`` column is the median of the ratios of back-to-back step pairs, a cross-check that is
less sensitive to slow drifts in machine load. Goal: at most 1.10 (1.0 is the limit: the supernet runs the same maths
on sliced weights).

Each model has its own ``torch.optim.AdamW``, and gradients are cleared with ``zero_grad(set_to_none=True)``, so the
supernet's parameters that the path does not touch keep ``grad is None`` and AdamW skips them. A parameter the path
touches only in part (a sliced weight) gets a full-size gradient, and AdamW steps the whole tensor.

Peak memory is measured in fresh subprocesses (this script, with a hidden flag), one for the supernet and one for the
standalone model of the space's largest architecture by MACs: peak RSS of a few training steps on that architecture
(``VmHWM``; see ``reset_peak_rss`` for why not ``ru_maxrss``), minus the RSS after ``import torch, glit``.

    .venv/bin/python bench/supernet_overhead.py [--archs 8] [--batch 64] [--repeats 10] [--level 2 1]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time


def proc_status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int:
    """Reset the peak-RSS mark to the current RSS where Linux allows it; return the current RSS in KiB.

    ``ru_maxrss`` is not used as the baseline: on Linux an exec'd child starts with the peak RSS of the process that
    forked it (here the parent benchmark, hundreds of MiB), which would hide the child's own peak. ``VmHWM`` belongs
    to the child's own address space, and writing 5 to /proc/self/clear_refs resets it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    now = proc_status_kib("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_kib() -> int:
    """Peak RSS in KiB: ``VmHWM``, else ``ru_maxrss`` (KiB on Linux)."""
    peak = proc_status_kib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_step(model, arch, x, y, lr: float = 5e-4, update: str = "plain"):
    """A closure that runs one training step of ``model`` (``model(x, arch)``; ``arch`` None for a subnet).

    ``update`` for a supernet: ``path``, the masked update with per-tensor step counts (``supernet.masked_update``:
    AdamW in place on the path's views, ``train.optim.path_step``); ``element``, the same with per-element step counts
    (``supernet.adam_step=element``, ``train.optim.element_step``); ``masked``, the per-tensor update by restoring
    every element off the path after a whole-tensor step (``masked_step``, what the sandwich rule uses); ``plain``,
    an unmasked AdamW step."""
    import torch
    import torch.nn.functional as F

    from glit.train.optim import element_step, masked_step, path_step

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, arch), y)
        loss.backward()
        if update == "path":
            path_step(opt, model.path_views(arch), opt.step)
        elif update == "element":
            element_step(opt, model.path_views(arch, every=True), opt.step)
        elif update == "masked":
            masked_step(opt, model.path_masks(arch), opt.step)
        else:
            opt.step()
        return loss.item()

    return step


def timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def bench_level(level: int, args) -> list[dict]:
    import torch

    import glit
    from glit.cost import cost

    space = glit.space_preset("cifar", level=level)
    fam = space.family
    torch.manual_seed(args.seed)
    supernet = glit.Supernet(space).train()
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    x = torch.randn(args.batch, fam.in_chans, fam.img_size, fam.img_size)
    y = torch.randint(0, fam.num_classes, (args.batch,))
    n_super = sum(p.numel() for p in supernet.parameters())
    print(f"\n== cifar level {level}: {space.size():.3g} architectures, supernet {n_super:,} params, "
          f"batch {args.batch}, {args.repeats} repeats, {args.warmup} warm-up steps each ==")
    print(f"{'arch':>4} {'MACs (M)':>9} {'params':>9} {'touched':>9} {'supernet ms':>12} {'subnet ms':>10} "
          f"{'ratio':>6} {'paired':>6} {'max |dy|':>9}")
    rows = []
    for i, arch in enumerate(archs):
        subnet = supernet.extract(arch)
        with torch.no_grad():  # same maths: the subnet's output equals the supernet path's (train-mode BatchNorm)
            state = {k: v.clone() for k, v in supernet.state_dict().items() if "running" in k or "tracked" in k}
            diff = (supernet(x, arch) - subnet(x)).abs().max().item()
            supernet.load_state_dict(state, strict=False)  # undo the BatchNorm statistics update of the check
        step_super = make_step(supernet, arch, x, y, update=args.update)
        step_sub = make_step(subnet, None, x, y)
        for _ in range(args.warmup):
            step_super()
            step_sub()
        touched = sum(p.numel() for p in supernet.parameters() if p.grad is not None)
        t_super, t_sub = [], []
        for r in range(args.repeats):
            if r % 2:
                t_sub.append(timed(step_sub))
                t_super.append(timed(step_super))
            else:
                t_super.append(timed(step_super))
                t_sub.append(timed(step_sub))
        ms_super, ms_sub = 1e3 * statistics.median(t_super), 1e3 * statistics.median(t_sub)
        paired = statistics.median(a / b for a, b in zip(t_super, t_sub))  # back-to-back pairs: robust to drift
        row = {"arch": i, "macs_m": cost(arch).macs / 1e6, "params": cost(arch).params, "touched": touched,
               "supernet_ms": ms_super, "subnet_ms": ms_sub, "ratio": ms_super / ms_sub, "paired": paired,
               "max_diff": diff}
        rows.append(row)
        print(f"{i:>4} {row['macs_m']:>9.2f} {row['params']:>9,} {touched:>9,} {ms_super:>12.2f} {ms_sub:>10.2f} "
              f"{row['ratio']:>6.3f} {paired:>6.3f} {diff:>9.1e}")
        del subnet, step_super, step_sub
    ratios = [r["ratio"] for r in rows]
    print(f"level {level}: median ratio {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"pooled {sum(r['supernet_ms'] for r in rows) / sum(r['subnet_ms'] for r in rows):.3f}; "
          f"median paired {statistics.median(r['paired'] for r in rows):.3f}")
    return rows


def memory_probe(which: str, level: int, batch: int, steps: int, threads: int | None) -> None:
    """Run in a fresh process: print JSON with the RSS growth of ``steps`` training steps on the largest arch."""
    import torch

    import glit
    from glit.cost import extremes

    base = reset_peak_rss()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    space = glit.space_preset("cifar", level=level)
    fam = space.family
    arch = extremes(space)[1]
    if which == "supernet":
        model, path = glit.Supernet(space).train(), arch
    else:
        model, path = glit.build_model(arch).train(), None
    x = torch.randn(batch, fam.in_chans, fam.img_size, fam.img_size)
    y = torch.randint(0, fam.num_classes, (batch,))
    step = make_step(model, path, x, y)
    for _ in range(steps):
        step()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"base_kib": base, "peak_kib": peak_rss_kib(), "params": params}))


def run_probe(which: str, level: int, args) -> dict:
    cmd = [sys.executable, __file__, "--memory-probe", which, "--level", str(level), "--batch", str(args.batch)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory_level(level: int, args) -> dict:
    import glit
    from glit.cost import cost, extremes

    space = glit.space_preset("cifar", level=level)
    largest = extremes(space)[1]
    sup, sub = run_probe("supernet", level, args), run_probe("subnet", level, args)
    grow_sup, grow_sub = sup["peak_kib"] - sup["base_kib"], sub["peak_kib"] - sub["base_kib"]
    print(f"\n== peak memory, cifar level {level}: 3 training steps on the largest architecture "
          f"({cost(largest).macs / 1e6:.2f} M MACs), batch {args.batch}, fresh process each ==")
    print(f"  supernet  : {sup['params']:>9,} params, peak RSS - RSS after import {grow_sup / 1024:7.1f} MiB")
    print(f"  standalone: {sub['params']:>9,} params, peak RSS - RSS after import {grow_sub / 1024:7.1f} MiB")
    print(f"  ratio supernet/standalone: params {sup['params'] / sub['params']:.3f}, "
          f"peak memory {grow_sup / max(grow_sub, 1):.3f}")
    return {"supernet": sup, "subnet": sub, "ratio": grow_sup / max(grow_sub, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=8, help="architectures sampled per level (default 8)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per model and architecture (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model and architecture (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the architecture sampler and the batch (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--level", type=int, nargs="+", choices=(1, 2), default=[2, 1],
                   help="space levels to run; the first one gives the headline figure (default: 2 1)")
    p.add_argument("--update", choices=("path", "element", "masked", "plain"), default="path",
                   help="supernet AdamW update: path (in place on the path's views, per-tensor step counts), element "
                        "(the same with per-element counts), masked (per-tensor, by restoring what is off the path; "
                        "the sandwich rule's) or plain")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--memory-probe", choices=("supernet", "subnet"), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.memory_probe:
        memory_probe(args.memory_probe, args.level[0], args.batch, steps=3, threads=args.threads)
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; AdamW per model, "
          "zero_grad(set_to_none=True): parameters off the path keep grad None and AdamW skips them; "
          "'touched' counts the supernet parameters that got a gradient (whole tensors, sliced or not)")
    t0 = time.perf_counter()
    medians = {}
    for level in args.level:
        medians[level] = statistics.median(r["ratio"] for r in bench_level(level, args))
    if not args.no_memory:
        for level in args.level:
            memory_level(level, args)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    others = "; ".join(f"level {lv}: {m:.2f}" for lv, m in medians.items() if lv != args.level[0])
    print(f"median step-time ratio supernet/subnet: {medians[args.level[0]]:.2f} (goal <= 1.10)"
          f" [cifar level {args.level[0]}{'; ' + others if others else ''}]")


if __name__ == "__main__":
    main()
