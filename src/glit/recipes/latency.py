"""``glit latency build`` and ``glit latency check``: measure a latency table on this machine, and check its
predictions against architectures measured end to end (``glit.search.latency``).

How parts are timed: in eval mode under ``torch.inference_mode``, on random inputs of the table's batch size. Every
part is called ``warmup`` times; then, in each of ``rounds`` rounds, every part in turn (in a shuffled order) is
timed over ``repeats`` consecutive calls (``time.perf_counter``, after a CUDA synchronise on a GPU), and the median of
those calls is the round's value. A part's latency is the median of its round values, after dropping those outside
1.5 interquartile ranges of the quartiles. A block is timed as the block module of a one-block model, on a (B, N, D)
token tensor; the stem (patch embedding, class token, position embedding) and the head (final norm, classifier)
alike. The constant is the median, over ``calibration`` sampled architectures timed end to end the same way, of
measured minus the sum of their parts.

Why rounds: on a shared machine the speed drifts by about +-20% from one second to the next (measured on our 2-core
machine: per-second medians of one cifar model at batch 1 ranged 4.45-6.71 ms over 30 s). A part timed in one burst
takes the speed of that moment, so two timings of the same model seconds apart differed by up to 60%. Interleaved
rounds spread every part's timings over the whole measurement, so each part sees the same mix of fast and slow
moments. The calibration architectures and an anchor (the family's DeiT-style architecture) are timed in the same
rounds as the parts. The check times the anchor again, in the rounds of its architectures: the anchor's ratio
``now / at build`` is the machine's drift since the table was built, which the check reports, and divides out of
its second, drift-corrected share (the predictor's own error, which a shared machine's drift would otherwise hide).
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import statistics
import time
from pathlib import Path

import torch

from glit.errors import GlitError
from glit.files import write_json
from glit.nn import build_model
from glit.presets import deit
from glit.search.latency import LatencyTable, block_key
from glit.space import Arch, SearchSpace
from glit.text import fmt_seconds
from glit.version import version_string


def robust_median(values: list[float]) -> float:
    """The median of ``values`` after dropping those outside 1.5 interquartile ranges of the quartiles."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) >= 4 else (min(values), 0, max(values))
    kept = [t for t in values if q1 - 1.5 * (q3 - q1) <= t <= q3 + 1.5 * (q3 - q1)]
    return statistics.median(kept or values)


def measure_all(fns: list, warmup: int = 5, repeats: int = 5, rounds: int = 20,
                device: torch.device | None = None, seed: int = 0) -> list[float]:
    """The robust latency of each ``fn()`` in milliseconds, timed in interleaved rounds (see the module docstring)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    rng = random.Random(seed)
    per_round: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for fn in fns:
            for _ in range(warmup):
                fn()
        order = list(range(len(fns)))
        for _ in range(rounds):
            rng.shuffle(order)
            for i in order:
                times = []
                for _ in range(repeats):
                    sync()
                    start = time.perf_counter()
                    fns[i]()
                    sync()
                    times.append(1e3 * (time.perf_counter() - start))
                per_round[i].append(statistics.median(times))
    return [robust_median(values) for values in per_round]


def build_table(space: SearchSpace, out: str | Path, device: str = "cpu", batch: int = 1, threads: int | None = None,
                calibration: int = 8, warmup: int = 5, repeats: int = 5, rounds: int = 20, seed: int = 0,
                progress: bool = True) -> LatencyTable:
    """Measure the stem, the head and every distinct block of ``space`` on this machine; write the table to ``out``."""
    if batch < 1 or calibration < 0 or repeats < 1 or rounds < 1 or warmup < 0:
        raise GlitError("--batch, --repeats and --rounds must be at least 1, --calibration and --warmup at least 0")
    dev = _device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    fam, start = space.family, time.perf_counter()
    one = dataclasses.replace(fam, depth=1)
    configs = list(dict.fromkeys(o for i in range(fam.depth) for o in space.block_options(i)))
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, fam.in_chans, fam.img_size, fam.img_size, generator=gen).to(dev)
    tokens = torch.randn(batch, fam.num_tokens, fam.embed_dim, generator=gen).to(dev)
    models = [build_model(Arch(one, (genes,))).to(dev).eval() for genes in configs]
    fns = [lambda m=m, g=g: m.blocks[0](tokens, g) for m, g in zip(models, configs)]
    fns += [lambda: models[0].embed(images), lambda: models[0].classify(tokens)]
    rng = random.Random(seed)
    calib = [space.sample(rng) for _ in range(calibration)]
    whole = [deit(fam), *calib]  # the anchor, then the calibration architectures, timed end to end
    fns += arch_fns(whole, dev, batch, seed)
    if progress:
        print(f"latency: timing {len(configs)} block configurations, the stem, the head and {len(whole)} "
              f"architectures in {rounds} interleaved rounds of {repeats} calls each", flush=True)
    times = measure_all(fns, warmup, repeats, rounds, dev, seed)
    n = len(configs)
    parts = LatencyTable(fam, times[n], times[n + 1], {block_key(g): t for g, t in zip(configs, times)})
    anchor, ends = times[n + 2], times[n + 3:]
    gaps = [t - parts.predict(a) for a, t in zip(calib, ends)]
    info = {"device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
            "torch": torch.__version__, "glit": version_string(), "batch": batch, "dtype": "float32",
            "threads": torch.get_num_threads(), "warmup": warmup, "repeats": repeats, "rounds": rounds,
            "calibration": calibration, "configurations": len(configs), "anchor_ms": anchor,
            "seconds": round(time.perf_counter() - start, 1), "space": space.to_dict(),
            "built": datetime.datetime.now().isoformat(timespec="seconds")}
    constant = calibration_constant(gaps, parts.fastest(space))
    table = dataclasses.replace(parts, constant_ms=constant, info=info, where=str(out))
    write_json(out, table.to_dict())
    if progress:
        print(f"latency: {len(configs)} block configurations, stem, head and {calibration} architectures end to "
              f"end in {fmt_seconds(info['seconds'])}; table in {out}", flush=True)
    return table


def calibration_constant(gaps: list[float], fastest_parts_ms: float) -> float:
    """What end-to-end timing adds to (or saves on) the sum of the parts: the median of ``gaps`` (measured minus
    predicted, ms), 0 without calibration architectures. On a loaded machine the parts can be timed slower than the
    whole, and a large negative constant would predict negative latencies (an unusable budget), so it may take off
    at most half of the fastest member's parts (``fastest_parts_ms``, the sum of its parts)."""
    return max(statistics.median(gaps) if gaps else 0.0, -0.5 * fastest_parts_ms)


def arch_fns(archs: list[Arch], device: torch.device, batch: int, seed: int = 0) -> list:
    """One call per architecture: its model, in eval mode, on a fixed random batch."""
    fns = []
    for arch in archs:
        model = build_model(arch).to(device).eval()
        fam = arch.family
        images = torch.randn(batch, fam.in_chans, fam.img_size, fam.img_size,
                             generator=torch.Generator().manual_seed(seed)).to(device)
        fns.append(lambda m=model, x=images: m(x))
    return fns


def check_table(table: LatencyTable, space: SearchSpace, archs: int, seed: int = 1) -> dict:
    """Predicted against measured latency of ``archs`` architectures sampled from ``space``, on this machine with
    the table's batch size and threads: the share within 10% and the RMSE (ms); and, with the anchor timed in the
    same rounds, the machine's drift since the build and the share within 10% with the drift divided out."""
    if archs < 1:
        raise GlitError(f"--archs must be at least 1, got {archs}")
    rng = random.Random(seed)
    sampled = [space.sample(rng) for _ in range(archs)]
    anchor = table.info.get("anchor_ms")
    measured = timed_archs(table, [deit(table.family), *sampled] if anchor else sampled)
    drift = measured.pop(0) / anchor if anchor else 1.0
    rows = [{"arch": arch.to_dict(), "predicted_ms": table.predict(arch), "measured_ms": t}
            for arch, t in zip(sampled, measured)]

    def share(scale: float) -> float:
        return sum(abs(r["predicted_ms"] * scale - r["measured_ms"]) <= 0.10 * r["measured_ms"] for r in rows) / archs

    errors = [(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    return {"archs": archs, "within_10pct": share(1.0),
            "rmse_ms": statistics.fmean((r["predicted_ms"] - r["measured_ms"]) ** 2 for r in rows) ** 0.5,
            "mean_error_pct": 100 * statistics.fmean(errors), "drift": drift if anchor else None,
            "within_10pct_drift_corrected": share(drift) if anchor else None, "rows": rows}


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GlitError(f"--device {name}: no CUDA GPU is available here")
    if not (name == "cpu" or name.startswith("cuda")):
        raise GlitError(f"--device must be cpu or cuda, got {name!r}")
    return torch.device(name)


def timed_archs(table: LatencyTable, archs: list[Arch]) -> list[float]:
    """Each architecture timed end to end here, all in the same interleaved rounds, with the table's device, batch,
    threads, warm-up, repeats and rounds."""
    info = table.info
    dev = _device(str(info.get("device", "cpu")).split(" ")[0])
    if info.get("threads"):
        torch.set_num_threads(int(info["threads"]))
    return measure_all(arch_fns(archs, dev, int(info.get("batch", 1))), int(info.get("warmup", 5)),
                       int(info.get("repeats", 5)), int(info.get("rounds", 20)), dev)


def latencies(table: LatencyTable, archs: list[Arch]) -> list[dict]:
    """``{"predicted", "measured"}`` milliseconds of each of ``archs``: by ``table``, and by ``timed_archs``.
    ``glit run`` records them for its finalists under a latency budget."""
    return [{"predicted": table.predict(a), "measured": t} for a, t in zip(archs, timed_archs(table, archs))]
