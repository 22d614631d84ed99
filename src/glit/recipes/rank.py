"""``glit rank``: how well a supernet ranks the architectures of a ground-truth file (``glit truth``).

Every architecture of the file that the supernet's space holds (or, with ``level1``, its level-1 part: the detail
genes at the preset's level-1 values, as the level-1 search scores them) is scored exactly as the search scores a
candidate (``glit.recipes.search.supernet_fitness``: inherited weights, BatchNorm recalibrated on
``search.bn_batches`` training batches, top-1 on the supernet's search split). The scores are compared with the
mean ground-truth top-1 over seeds; see ``glit.health.metrics`` for the figures. Architectures outside the space
are counted as skipped, never scored.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from tqdm import tqdm

from glit.config import Config
from glit.cost import cost
from glit.data.build import Data, SharedData, fingerprint, load_data
from glit.errors import GlitError
from glit.files import write_json
from glit.health.metrics import Truth, bias_metrics, group, noise_ceiling, rank_metrics, read_truth, selection
from glit.layout import HEALTH as HEALTH_FILE
from glit.layout import SUPERNET_DIRS
from glit.presets import level1_part
from glit.recipes.search import make_budget, search_config, supernet_checkpoint
from glit.scoring import EVALUATORS
from glit.scoring.make import make_fitness
from glit.search.marginal import marginal_fitness
from glit.space import SearchSpace
from glit.train.dist import Dist, init_distributed

CHUNK = 8  # architectures per progress-bar step (and per spread over ranks under torchrun)


SCORINGS = ("arch", "level1", "marginal")


def rank(supernet: str | Path, truth_file: str | Path, data_dir: str | None = None, overrides: list[str] = (),
         level1: bool = False, progress: bool = True, data: Data | None = None, scoring: str = "arch",
         evaluator: str = "supernet", subset: int | None = None) -> dict:
    """The rank figures of the supernet in ``supernet`` (a folder or checkpoint) against ``truth_file``, with the
    pairs it scored: ``{"arch", "score", "truth_top1", "seeds"}``, in the file's order. ``data``: the supernet's
    data, already loaded (default: load it from the supernet's config).

    ``scoring`` says what an architecture's score is: ``arch``, its own (as level 2 and random search score); or
    its distribution's, as level 1 scores it: ``level1``, with the detail genes at their level-1 values, or
    ``marginal``, the mean over ``search.marginal_samples`` detail settings drawn under the budget.

    ``evaluator`` (``glit.scoring``) says how an architecture is scored: with the supernet's weights (``supernet``,
    ``finetune``) or without them (``short``, ``short-tse``, the zero-cost proxies); the supernet still gives the data,
    the config and the space. The result records the wall and CPU seconds per architecture scored. With ``subset``
    (m), it also holds the selection test over subsets of m architectures (``glit.health.metrics.selection``)."""
    if scoring not in SCORINGS:
        raise GlitError(f"scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    ckpt, file = supernet_checkpoint(supernet)
    cfg = search_config(ckpt, file, overrides)
    if data_dir:
        cfg.data.source, cfg.data.root = "folder", data_dir
    rows = read_truth(truth_file)
    if not rows:
        raise GlitError(f"{truth_file}: no ground truth (the file is missing or empty)")
    truths = group(rows, str(truth_file))
    trained = SearchSpace.from_dict(ckpt["space"], f"{file}: space")
    space = level1_part(cfg.preset, trained) if level1 else trained
    held = [t for t in truths if space.contains(t.arch)]
    if not held:
        raise GlitError(f"{truth_file}: none of its {len(truths)} architectures lies in the space of {file}"
                        f"{' (level-1 part)' if level1 else ''}; was it measured for another preset or data?")

    if subset is not None and not 2 <= subset <= len(held):
        raise GlitError(f"--selection: subsets of {subset} architectures, but {len(held)} are ranked (2 to "
                        f"{len(held)})")
    dist = init_distributed(cfg.device)
    data = data or load_data(cfg)
    measured_on = {r["data"] for r in rows if "data" in r}
    if measured_on and measured_on != {fingerprint(data.record)}:
        raise GlitError(f"{truth_file}: measured on other data than the supernet's (data fingerprint "
                        f"{sorted(measured_on)[0]}, the supernet's {fingerprint(data.record)})")
    if evaluator not in EVALUATORS:
        raise GlitError(f"unknown evaluator {evaluator!r} (valid: {', '.join(EVALUATORS)})")
    fitness = make_fitness(evaluator, cfg, data, dist, trained.family, ckpt, file)
    if scoring == "level1":
        fitness = _by_level1_member(fitness, level1_part(cfg.preset, trained))
    elif scoring == "marginal":
        fitness = marginal_fitness(fitness, trained, make_budget(cfg, trained), cfg.search.marginal_samples, cfg.seed)
    scores = []
    bar = tqdm(total=len(held), desc="rank", unit="arch", disable=None if progress and dist.main else True,
               dynamic_ncols=True)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(held), CHUNK):
        scores += fitness([t.arch for t in held[i:i + CHUNK]])
        bar.update(len(held[i:i + CHUNK]))
    bar.close()
    extra = {}
    truth = [t.mean for t in held]
    if subset:
        extra["selection"] = selection(scores, truth, subset)
    if hasattr(fitness, "results") and dist.world == 1:  # the short evaluator's other figure, same trainings
        tse = [-fitness.results[t.arch]["train_loss_sum"] for t in held]
        extra["tse"] = judge(held, tse, truths)  # with its pairs: bench/finalist_round.py --tse reads them
        for pair, t in zip(extra["tse"]["pairs"], held):  # each step's loss: TSE over part of the run (bench/)
            pair["step_losses"] = fitness.results[t.arch]["step_losses"]
        if subset:
            extra["tse"]["selection"] = selection(tse, truth, subset)
    return {**judge(held, scores, truths), **extra, "skipped": len(truths) - len(held), "supernet": str(file),
            "truth": str(truth_file), "level1": level1, "scoring": scoring, "evaluator": evaluator,
            "seconds_per_arch": (time.perf_counter() - wall) / len(held),
            "cpu_seconds_per_arch": (time.process_time() - cpu) / len(held), "search_size": cfg.data.search_size}


def judge(held: list[Truth], scores: list[float], truths: list[Truth]) -> dict:
    """The rank figures of ``scores`` (one per architecture of ``held``) against their mean ground truth (tau among
    the mixes and the local bias too: ``glit.health.metrics``), MACs' Kendall tau on the same architectures, the
    noise ceiling of ``truths`` (the whole file), and the pairs."""
    result = {**rank_metrics(scores, [t.mean for t in held]),
              **bias_metrics([t.arch for t in held], scores, [t.mean for t in held])}
    macs = rank_metrics([cost(t.arch).macs for t in held], [t.mean for t in held])["kendall_tau"]
    return {**result, "macs_kendall_tau": macs, **noise_ceiling(truths),
            "pairs": [{"arch": t.arch.to_dict(), "score": s, "truth_top1": t.mean, "seeds": sorted(t.top1)}
                      for t, s in zip(held, scores)]}


HEALTH = tuple((key, SUPERNET_DIRS[key], key == "level1") for key in ("level1", "level2", "random"))
HEALTH_KEYS = ("n", "skipped", "kendall_tau", "kendall_tau_mixes", "local_bias", "spearman_rho", "precision_at_5",
               "regret", "macs_kendall_tau", "noise_ceiling_tau", "noise_ceiling_n")


def supernet_health(run_dir: Path, truth_file: Path, cfg: Config, dist: Dist, shared: SharedData | None = None
                    ) -> dict:
    """Each supernet of a ``glit run`` folder ranked against ``truth_file`` as its search used it: the level-1
    supernet on its level-1 part, the level-2 and whole-space ones on their spaces. Written, pairs included, to
    ``run_dir/health.json``, and reused while the truth file is unchanged. A supernet that cannot be ranked (no
    architecture of the file in its space, other data) gets ``n`` 0 and the reason, and the run goes on."""
    digest = hashlib.sha256(truth_file.read_bytes()).hexdigest()
    cache = run_dir / HEALTH_FILE
    old = json.loads(cache.read_text()) if cache.exists() else {}
    supernets = old.get("supernets", {}) if old.get("truth_sha256") == digest else {}
    todo = [h for h in HEALTH if h[0] not in supernets]
    data = load_data(cfg, shared) if todo else None  # decoded once for the three supernets (the run's data)
    for name, folder, level1 in todo:
        try:
            supernets[name] = rank(run_dir / folder, truth_file, level1=level1, progress=False, data=data)
        except GlitError as err:
            supernets[name] = {"n": 0, "error": str(err)}
    supernets = {name: supernets[name] for name, _, _ in HEALTH}
    if dist.main and todo:
        write_json(cache, {"truth": str(truth_file), "truth_sha256": digest, "supernets": supernets})
    return {"truth": str(truth_file), "supernets": {name: {k: r[k] for k in (*HEALTH_KEYS, "error") if k in r}
                                                    for name, r in supernets.items()}}


def _by_level1_member(fitness, members: SearchSpace):
    """Score each architecture as its distribution's only member of ``members`` (the level-1 part)."""

    def score(archs):
        return fitness([members.fix(num_global_heads=[b.num_global_heads for b in a.blocks]).sample(random.Random(0))
                        for a in archs])

    return score
