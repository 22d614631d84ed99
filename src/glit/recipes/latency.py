"""``glit latency build`` and ``glit latency check``: measure a latency table on this machine, and check its
predictions against architectures measured end to end (``glit.search.latency``).

How a part is timed: in eval mode under ``torch.inference_mode``, on random inputs of the table's batch size,
``warmup`` calls, then ``repeats`` timed calls (``time.perf_counter``, after a CUDA synchronise on a GPU); the values
outside 1.5 interquartile ranges of the quartiles are dropped and the median of the rest is the part's latency.
A block is timed as the block module of a one-block model, on a (B, N, D) token tensor; the stem (patch embedding,
class token, position embedding) and the head (final norm, classifier) alike. The constant is the median, over
``calibration`` sampled architectures timed end to end, of measured minus the sum of their parts.
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
from glit.search.latency import LatencyTable, block_key
from glit.space import Arch, SearchSpace
from glit.text import fmt_seconds
from glit.version import version_string


def measure_ms(fn, warmup: int = 5, repeats: int = 25, device: torch.device | None = None) -> float:
    """The robust latency of ``fn()`` in milliseconds (see the module docstring)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(1e3 * (time.perf_counter() - start))
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) >= 4 else (min(times), 0, max(times))
    kept = [t for t in times if q1 - 1.5 * (q3 - q1) <= t <= q3 + 1.5 * (q3 - q1)]
    return statistics.median(kept or times)


def build_table(space: SearchSpace, out: str | Path, device: str = "cpu", batch: int = 1, threads: int | None = None,
                calibration: int = 8, warmup: int = 5, repeats: int = 25, seed: int = 0,
                progress: bool = True) -> LatencyTable:
    """Measure the stem, the head and every distinct block of ``space`` on this machine; write the table to ``out``."""
    if batch < 1 or calibration < 0 or repeats < 1 or warmup < 0:
        raise GlitError("--batch and --repeats must be at least 1, --calibration and --warmup at least 0")
    dev = _device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    fam, start = space.family, time.perf_counter()
    one = dataclasses.replace(fam, depth=1)
    configs = list(dict.fromkeys(o for i in range(fam.depth) for o in space.block_options(i)))
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, fam.in_chans, fam.img_size, fam.img_size, generator=gen).to(dev)
    tokens = torch.randn(batch, fam.num_tokens, fam.embed_dim, generator=gen).to(dev)
    blocks = {}
    for k, genes in enumerate(configs):
        model = build_model(Arch(one, (genes,))).to(dev).eval()
        blocks[block_key(genes)] = measure_ms(lambda m=model, g=genes: m.blocks[0](tokens, g), warmup, repeats, dev)
        if progress and (k + 1) % 25 == 0:
            print(f"latency: {k + 1}/{len(configs)} block configurations measured", flush=True)
    model = build_model(Arch(one, (configs[0],))).to(dev).eval()
    stem = measure_ms(lambda: model.embed(images), warmup, repeats, dev)
    head = measure_ms(lambda: model.classify(tokens), warmup, repeats, dev)
    parts = LatencyTable(fam, stem, head, blocks)
    rng = random.Random(seed)
    gaps = [measure_arch(arch, dev, batch, warmup, repeats) - parts.predict(arch)
            for arch in (space.sample(rng) for _ in range(calibration))]
    info = {"device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
            "torch": torch.__version__, "glit": version_string(), "batch": batch, "dtype": "float32",
            "threads": torch.get_num_threads(), "warmup": warmup, "repeats": repeats, "calibration": calibration,
            "configurations": len(configs), "seconds": round(time.perf_counter() - start, 1),
            "space": space.to_dict(),
            "built": datetime.datetime.now().isoformat(timespec="seconds")}
    table = dataclasses.replace(parts, constant_ms=statistics.median(gaps) if gaps else 0.0, info=info,
                                where=str(out))
    write_json(out, table.to_dict())
    if progress:
        print(f"latency: {len(configs)} block configurations, stem, head and {calibration} architectures end to "
              f"end in {fmt_seconds(info['seconds'])}; table in {out}", flush=True)
    return table


def measure_arch(arch: Arch, device: torch.device, batch: int, warmup: int = 5, repeats: int = 25,
                 seed: int = 0) -> float:
    """``arch``'s latency end to end, timed as the table's parts are."""
    model = build_model(arch).to(device).eval()
    fam = arch.family
    images = torch.randn(batch, fam.in_chans, fam.img_size, fam.img_size,
                         generator=torch.Generator().manual_seed(seed)).to(device)
    return measure_ms(lambda: model(images), warmup, repeats, device)


def check_table(table: LatencyTable, space: SearchSpace, archs: int, seed: int = 1) -> dict:
    """Predicted against measured latency of ``archs`` architectures sampled from ``space``, on this machine with
    the table's batch size and threads: the share within 10% and the RMSE (ms)."""
    if archs < 1:
        raise GlitError(f"--archs must be at least 1, got {archs}")
    rng = random.Random(seed)
    rows = []
    for _ in range(archs):
        arch = space.sample(rng)
        t = finalist_latency(table, arch)
        rows.append({"arch": arch.to_dict(), "predicted_ms": t["predicted"], "measured_ms": t["measured"]})
    errors = [(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    return {"archs": archs, "within_10pct": sum(abs(e) <= 0.10 for e in errors) / archs,
            "rmse_ms": statistics.fmean((r["predicted_ms"] - r["measured_ms"]) ** 2 for r in rows) ** 0.5,
            "mean_error_pct": 100 * statistics.fmean(errors), "rows": rows}


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GlitError(f"--device {name}: no CUDA GPU is available here")
    if not (name == "cpu" or name.startswith("cuda")):
        raise GlitError(f"--device must be cpu or cuda, got {name!r}")
    return torch.device(name)


def finalist_latency(table: LatencyTable, arch: Arch) -> dict:
    """``{"predicted", "measured"}`` milliseconds of ``arch``: by ``table``, and timed end to end here with the
    table's device, batch, threads and repeats (``glit run`` records it for each finalist under a latency budget)."""
    dev = _device(str(table.info.get("device", "cpu")).split(" ")[0])
    if table.info.get("threads"):
        torch.set_num_threads(int(table.info["threads"]))
    measured = measure_arch(arch, dev, int(table.info.get("batch", 1)), int(table.info.get("warmup", 5)),
                            int(table.info.get("repeats", 25)))
    return {"predicted": table.predict(arch), "measured": measured}
