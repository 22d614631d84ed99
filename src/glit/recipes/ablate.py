"""``glit ablate``: the paper's two ablations, each as one table, at the preset's recipe and MACs budget.

- ``search``: the hierarchy against one-level search and random search over the same whole space (the paper's search
  ablation). It first runs ``glit run`` in the same folder (a finished one with the same config is reused, stage by
  stage), which gives the hierarchy's winner (``7-searched``), the random-search winner (``6-random``, ``9-random``)
  and the DeiT-style reference (``8-baseline``). Then **one-level search** (``10-one-level``): evolution over the
  whole space, every gene free, on the same whole-space supernet as random search, with as many scored candidates as
  both levels of the hierarchy scored (rounded up to whole generations of ``search.population``); its winner is
  retrained into ``11-one-level``. With ``search.finalists`` K > 0 the one-level search gets the finalist round that
  ``glit run`` gives the other two (``10-one-level-finalists``, same K and evaluator), and its winner is retrained.
- ``locality``: one architecture retrained with each local operator (``glit.genes.LOCAL_OPS``: the paper's 1-D conv,
  window attention, a 2-D conv), into ``locality-<op>``, and the all-global DeiT-style baseline, into ``8-baseline``
  (where ``glit run`` retrains it: a run or a search study in the same folder shares it). The architecture is
  ``--arch`` or, by default, the preset's level-1 details (qkv_ratio 1, mlp_ratio 4, conv_ratio 1, the middle kernel)
  with H/3 of each block's H heads global: every block mixed, two thirds of its heads local, so that the operator
  matters. Its local blocks take each operator in turn; nothing else changes.

Every model is trained with each of ``seeds`` consecutive seeds from ``cfg.seed`` (the first seed's folder has no
suffix, the others ``-seed<S>``, as ``glit run`` names them) and reported as mean ± std, with a paired test on the same
test images against the first row (``glit.verdict``, disagreements pooled over seeds). Results:
``ablation-<study>.json``, the printed table and ``ablation-<study>.html`` (one pair per study, so both studies can
share a run folder). Running the same command again continues; finished trainings are reused.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from pathlib import Path

from glit.config import Config, updated
from glit.cost import cost
from glit.data.build import SharedData
from glit.errors import GlitError
from glit.files import write_json
from glit.genes import LOCAL_OPS
from glit.layout import (
    ONE_LEVEL_FINAL,
    ONE_LEVEL_ROUND,
    ONE_LEVEL_SEARCH,
    ablation_file,
    finalist_folders,
    seed_folders,
)
from glit.presets import deit, space_preset
from glit.recipes.finalists import finalist_round
from glit.recipes.run import paired_comparison, random_supernet, run
from glit.recipes.search import search
from glit.recipes.train import train
from glit.space import Arch

STUDIES = ("search", "locality")


def ablate(cfg: Config, study: str, out: str | Path, seeds: int = 1, arch: Arch | None = None,
           command: str = "") -> dict:
    """Run one ablation study into ``out`` and write its table; see the module docstring."""
    if study not in STUDIES:
        raise GlitError(f"--study must be one of {', '.join(STUDIES)}, got {study!r}")
    if seeds < 1:
        raise GlitError(f"--seeds must be at least 1, got {seeds}")
    if arch is not None and study != "locality":
        raise GlitError("--arch is for --study locality")
    out = Path(out)
    seed_list = [cfg.seed + k for k in range(seeds)]
    rows = _search_rows(cfg, out, seed_list, command) if study == "search" else \
        _locality_rows(cfg, out, seed_list, arch)
    result = {"study": study, "preset": cfg.preset, "seeds": seed_list, "command": command, "rows": rows}
    write_json(out / ablation_file(study), result)
    return result


def _search_rows(cfg: Config, out: Path, seeds: list[int], command: str) -> list[dict]:
    shared = SharedData()
    summary = run(cfg, out, command, shared)
    wanted = summary["search"]["level1_candidates"] + summary["search"]["level2_candidates"]
    supernet = random_supernet(cfg, out)  # random search's whole-space supernet
    one = search(cfg, supernet, out / ONE_LEVEL_SEARCH, resume=True, shared=shared,
                 strategy="evolution", generations=math.ceil(wanted / cfg.search.population))
    if cfg.search.finalists:  # the round the other two searches had, same K and evaluator
        won = finalist_round(cfg, [(supernet, out / ONE_LEVEL_SEARCH)], out / ONE_LEVEL_ROUND,
                             shared=shared)["winner"]
        one = {**one, "best": Arch.from_dict(won["arch"]), "score": won["search_score"]}
    archs = {name: Arch.from_dict(summary[name]["arch"]) for name in ("searched", "random", "baseline")}
    entries = [("hierarchical", archs["searched"], finalist_folders(out, "searched", seeds),
                wanted, summary["searched"]["search_score"]),
               ("one-level", one["best"], seed_folders(out / ONE_LEVEL_FINAL, seeds), one["scored"], one["score"]),
               ("random", archs["random"], finalist_folders(out, "random", seeds),
                summary["search"]["random_candidates"], summary["random"]["search_score"]),
               ("DeiT-style", archs["baseline"], finalist_folders(out, "baseline", seeds), None, None)]
    return _train_rows(cfg, entries, seeds, shared)


def _locality_rows(cfg: Config, out: Path, seeds: list[int], arch: Arch | None) -> list[dict]:
    base = arch or default_locality_arch(cfg.preset)
    if all(b.local_op is None for b in base.blocks):
        raise GlitError("--arch: the architecture has no local heads, so no local operator to vary")
    entries = [(op, with_local_op(base, op), seed_folders(out / f"locality-{op}", seeds), None, None)
               for op in LOCAL_OPS]
    # The all-global row is glit run's DeiT-style finalist (same architecture, recipe and seeds): it trains into the
    # run's 8-baseline folders, so a glit run or a search study in the same folder and this row share it.
    entries.append(("all-global (DeiT-style)", deit(base.family), finalist_folders(out, "baseline", seeds),
                    None, None))
    return _train_rows(cfg, entries, seeds, SharedData())


def default_locality_arch(preset: str) -> Arch:
    """The preset's level-1 details with H/3 of each block's heads global (see the module docstring)."""
    level1 = space_preset(preset, 1)
    return level1.fix(num_global_heads=level1.family.num_heads // 3).sample(random.Random(0))  # its only member


def with_local_op(arch: Arch, op: str) -> Arch:
    """``arch`` with every local part running ``op``."""
    return Arch(arch.family, tuple(dataclasses.replace(b, local_op=op) if b.local_op else b for b in arch.blocks))


def _train_rows(cfg: Config, entries: list, seeds: list[int], shared: SharedData) -> list[dict]:
    """Train every entry with every seed (finished trainings are read back), then one row per entry."""
    rows = []
    for name, arch, folders, scored, score in entries:
        print(f"[ablation] {name}: {len(seeds)} seed{'s' * (len(seeds) > 1)}", flush=True)
        tops = [train(updated(cfg, {"seed": seed}), arch, folder, resume=True, shared=shared)["top1"]
                for seed, folder in zip(seeds, folders)]
        c = cost(arch)
        rows.append({"name": name, "arch": arch.to_dict(), "params": c.params, "macs": c.macs,
                     "candidates": scored, "search_score": score, "top1_seeds": tops, "top1": statistics.fmean(tops),
                     "top1_std": statistics.stdev(tops) if len(tops) > 1 else None,
                     "folders": [str(f) for f in folders]})
    first = rows[0]
    for row in rows[1:]:
        row["vs_first"] = paired_comparison([Path(f) for f in first["folders"]], [Path(f) for f in row["folders"]])
    return rows


