"""``glit run``: the whole hierarchical search, the retraining of its winner, and the two baselines (SPEC 1.3, 3.4).

Stages, each in its own folder under ``--out DIR``:

1. ``1-supernet``: the level-1 supernet, trained by uniform single-path sampling on the level-1 paths (only
   ``num_global_heads`` varies), or with ``search.level1_supernet`` "whole" on paths of the whole space;
2. ``2-search``: the level-1 evolutionary search under the budget, over the level-1 space (the detail genes at their
   level-1 values), or with ``search.level1_scoring`` "marginal" each distribution scored as the mean of several
   detail settings drawn for it (``glit.search.marginal``); its top-k distributions are kept;
   With ``search.finalists`` K > 0 and ``search.finalists_level`` 1, ``2-finalists``: the finalist round
   (``glit.recipes.finalists``): the level-1 search's top K distinct distributions (each with its detail genes at
   their level-1 values) re-scored by ``search.finalist_evaluator``, the best winning;
3. ``3-pick``: the winning distribution: the round's winner, or without a round the best-scored one;
4. ``4-supernet``: the level-2 supernet around the winner (the details vary), warm-started from the level-1
   supernet's paths when ``search.warm_start``, and trained for ``search.level2_epochs``; with
   ``search.level2_topk`` k > 1, also ``4-supernet-2`` ... ``4-supernet-k`` around the next best distributions of
   the level-1 top-k (and ``5-search-2`` ...), the best search score of the k level-2 searches winning. With
   ``search.level2_epochs`` 0 no level-2 supernet is trained: the level-2 searches score on the level-1 supernet
   (trained over the whole space), and so does random search;
5. ``5-search``: the level-2 evolutionary search. The level-1 winner (its detail genes at their level-1 values) is
   the incumbent: it is scored first and stays the answer unless a candidate beats it by more than
   ``search.incumbent_margin`` standard errors of the search split; its answer goes to retraining. With
   ``search.finalists_level`` 2, ``5-finalists``: the round on complete architectures, each level-2 search's answer
   and best candidates pooled (``glit.recipes.finalists``), its winner going to retraining instead (bench/RESULTS.md,
   issue 27: the level-1 details are a weak pool to pick from);
6. ``6-random``: the random-search baseline over the same whole space (every gene of every block free):
   ``6-random/supernet``, a supernet over that space, warm-started from the level-1 supernet and trained like the
   level-2 one; then ``6-random/search``, as many candidates as both levels scored together, drawn uniformly under
   the same budget, the best-scored one winning (with ``search.finalists``, ``6-random/finalists``: the same round,
   with the same K and evaluator);
7. ``7-searched``, ``8-baseline``, ``9-random``: the searched architecture, the DeiT-style architecture (every head
   global, qkv_ratio 1, mlp_ratio 4) and the random-search winner, each trained from scratch with the same recipe
   and seed, and evaluated on the test split; with ``run.seeds`` k > 1, also with the next k - 1 seeds, into
   ``7-searched-seed1`` ... (``summary.json``: the mean top-1 and its std over seeds, and paired comparisons pooled
   over them).

At the end the searched model is exported as ``searched.safetensors`` and, with onnx installed, ``searched.onnx``
(``glit.export``). The DeiT-style architecture sets the MACs budget unless ``search.max_macs`` is given;
``search.max_latency`` adds a latency budget, and then each finalist's predicted and measured latency is recorded.
Running the same command again continues where it stopped (each stage resumes from its own checkpoint or search
state) and never recomputes a finished stage. A changed config is an error. Every stage gets the run's config as it
is; what differs between stages (a supernet's space and length, a search's strategy and length) is passed to it as
arguments, which its folder records in ``stage.json`` beside that ``config.yaml`` (``glit.folder``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

from glit.config import Config, OptimConfig, updated
from glit.cost import cost
from glit.data.build import SharedData, load_data
from glit.errors import GlitError
from glit.export import onnx_available
from glit.files import write_json
from glit.folder import prepare_out, write_config
from glit.layout import (
    FINAL_DIRS,
    FINALISTS,
    PICK_DIR,
    RANDOM_DIR,
    ROUND_DIRS,
    SEARCH_DIRS,
    SUMMARY,
    SUPERNET_DIRS,
    finalist_folders,
    level2_dirs,
)
from glit.presets import deit, level1_part, space_preset
from glit.recipes.common import space_for_data
from glit.recipes.export import export
from glit.recipes.finalists import finalist_round
from glit.recipes.latency import latencies
from glit.recipes.rank import supernet_health
from glit.recipes.search import make_budget, search
from glit.recipes.train import read_correct, train
from glit.recipes.train_supernet import train_supernet
from glit.space import Arch, SearchSpace
from glit.text import fmt_seconds
from glit.train.dist import barrier, init_distributed
from glit.verdict import compare, paired_counts
from glit.version import version_string


def run(cfg: Config, out: str | Path, command: str = "", shared: SharedData | None = None) -> dict:
    """Run (or continue) the pipeline into ``out``; ``shared``: data a caller has decoded or will use after."""
    out = Path(out)
    truth_file = Path(cfg.run.truth) if cfg.run.truth else out / "truth.jsonl"
    if cfg.run.truth and not truth_file.is_file():
        raise GlitError(f"run.truth: {truth_file}: no such file (a truth.jsonl written by glit truth)")
    dist = init_distributed(cfg.device)
    prepare_out(out, cfg, resume=True, dist=dist, state=SUMMARY, command="glit run")
    if (out / SUMMARY).is_file():  # finished: a re-run changes nothing, unless it brings another truth file
        done = json.loads((out / SUMMARY).read_text())
        if (done.get("health") or {}).get("truth") == (str(truth_file) if truth_file.is_file() else None):
            if dist.main:
                print(f"{out}: the run is finished (its summary.json); nothing to do. glit report {out} rebuilds "
                      "its report.", flush=True)
            return done
    continuing = (out / "run.json").exists()
    split = None
    if not continuing:  # a bad tree is refused before the run writes anything
        split = load_data(updated(cfg, {"data.cache": "no"})).record
    elif (out / SUPERNET_DIRS["level1"] / "split.json").is_file():
        split = json.loads((out / SUPERNET_DIRS["level1"] / "split.json").read_text())
    if dist.main:
        print(banner(cfg, out, dist, split, continuing), flush=True)
    write_config(out, cfg, dist)
    if dist.main and not (out / "run.json").exists():
        write_json(out / "run.json", {"command": command, "preset": cfg.preset,
                                      "started": datetime.datetime.now().isoformat(timespec="seconds"),
                                      **machine_record(dist)})

    shared = shared or SharedData()  # one decode per run: the stages share the data the first of them loads
    per_distribution = 1 + (cfg.search.level2_epochs != 0)  # a level-2 supernet (unless level 1's) and a search
    clock = StageClock(out, dist.main, 7 + per_distribution * cfg.search.level2_topk + 2 * bool(cfg.search.finalists))

    # 1-2: level 1, the distribution
    whole_space = cfg.search.level1_supernet == "whole"
    level1_dir, level1_search_dir = out / SUPERNET_DIRS["level1"], out / SEARCH_DIRS["level1"]
    with clock(SUPERNET_DIRS["level1"], "level-1 supernet"):
        trained = train_supernet(cfg, level1_dir, resume=True, shared=shared,
                                 space=stage_space(cfg, 2 if whole_space else 1))["space"]
    marginal = trained if cfg.search.level1_scoring == "marginal" else None
    with clock(SEARCH_DIRS["level1"], "level-1 search"):
        level1_search = search(cfg, level1_dir, level1_search_dir, resume=True,
                               space=level1_part(cfg.preset, trained), marginal=marginal, shared=shared,
                               strategy="evolution")

    rounds = {}
    round_level = cfg.search.finalists_level if cfg.search.finalists else None
    if round_level == 1:  # re-score the level-1 search's top distributions with a costlier evaluator
        with clock(ROUND_DIRS["searched"], f"level 1's finalist round: the top {cfg.search.finalists} distributions "
                                           f"re-scored by {cfg.search.finalist_evaluator}"):
            rounds["searched"] = finalist_round(cfg, [(level1_dir, level1_search_dir)],
                                                out / ROUND_DIRS["searched"], shared=shared)

    # 3: the winning distribution
    with clock(PICK_DIR, "the level-1 pick"):
        winner = pick_distribution(out, rounds.get("searched"))
    print(f"level-1 pick: global heads per block {[b.num_global_heads for b in winner.blocks]}", flush=True)

    # 4-5: level 2, the details around the winning distribution (and the next best ones, with search.level2_topk);
    # with search.level2_epochs 0 on the level-1 supernet, which trained them (no 4-supernet folders)
    warm = level1_dir if cfg.search.warm_start else None  # None: supernet.warm_start
    level2_searches = []
    for j, incumbent in enumerate(level2_distributions(cfg, out, winner)):
        supernet_dir, search_dir = level2_dirs(j)
        space = stage_space(cfg, 2, incumbent)
        if cfg.search.level2_epochs == 0:
            supernet_dir = SUPERNET_DIRS["level1"]
        else:
            with clock(supernet_dir, "level-2 supernet"):
                train_supernet(cfg, out / supernet_dir, resume=True, shared=shared, space=space,
                               optim=level2_optim(cfg), warm_start=warm)
        with clock(search_dir, "level-2 search"):
            result = search(cfg, out / supernet_dir, out / search_dir, resume=True, incumbent=incumbent,
                            space=space if cfg.search.level2_epochs == 0 else None, shared=shared,
                            strategy="evolution")
        level2_searches.append((out / supernet_dir, out / search_dir, result))
    level2_runs = [r for _, _, r in level2_searches]
    evo = max(level2_runs, key=lambda r: r["score"])  # ties go to the first, the level-1 winner's
    if round_level == 2:  # re-score complete architectures: each level-2 search's answer and best candidates
        with clock(ROUND_DIRS["level2"], f"level 2's finalist round: the top {cfg.search.finalists} architectures "
                                         f"re-scored by {cfg.search.finalist_evaluator}"):
            rounds["searched"] = finalist_round(cfg, [(sn, sd) for sn, sd, _ in level2_searches],
                                                out / ROUND_DIRS["level2"], shared=shared)

    # 6: the random-search baseline: the whole space, its own supernet (as many epochs as all level-2 supernets;
    # with none, the level-1 supernet), as many candidates as both levels together
    candidates = level1_search["scored"] + sum(r["scored"] for r in level2_runs)
    random_dir, random_search_dir = random_supernet(cfg, out), out / SEARCH_DIRS["random"]
    own = random_dir != level1_dir
    with clock(RANDOM_DIR, f"random search: {'its' if own else 'the level-1'} whole-space supernet, then "
                           f"{candidates} random candidates"):
        if own:
            train_supernet(cfg, random_dir, resume=True, shared=shared, space=stage_space(cfg, 2),
                           optim=level2_optim(cfg, len(level2_runs)), warm_start=warm)
        rnd = search(cfg, random_dir, random_search_dir, resume=True, shared=shared,
                     strategy="random", candidates=candidates)
    if cfg.search.finalists:  # the same round, same K and evaluator, for the random-search baseline
        with clock(ROUND_DIRS["random"], f"finalist round of random search: the top {cfg.search.finalists}"):
            rounds["random"] = finalist_round(cfg, [(random_dir, random_search_dir)], out / ROUND_DIRS["random"],
                                              shared=shared)

    # 7-9: retrain the three finalists with the same recipe and seed, evaluate on the test split
    archs = {"searched": evo["best"], "baseline": deit(trained.family), "random": rnd["best"]}
    scores = {"searched": evo["score"], "baseline": None, "random": rnd["score"]}
    for name, r in rounds.items():  # a round's winner is retrained, except level 1's (level 2 searched around it)
        if name == "random" or round_level == 2:
            archs[name], scores[name] = Arch.from_dict(r["winner"]["arch"]), r["winner"]["search_score"]
    results = {}
    titles = {"searched": "retrain the searched architecture", "baseline": "retrain the DeiT-style baseline",
              "random": "retrain the random-search winner"}
    seeds = retrain_seeds(cfg)
    for name in FINALISTS:
        with clock(FINAL_DIRS[name], titles[name] + (f" with {len(seeds)} seeds" if len(seeds) > 1 else "")):
            results[name] = [train(updated(cfg, {"seed": seed}), archs[name], folder, resume=True, shared=shared)
                             for seed, folder in zip(seeds, finalist_folders(out, name, seeds))]

    budget = make_budget(cfg, trained)
    summary = {"budget_macs": budget.max_macs, "budget_text": budget.describe(), "stage_seconds": clock.times,
               "search": {"level1_candidates": level1_search["scored"],
                          "level2_candidates": sum(r["scored"] for r in level2_runs),
                          "random_candidates": rnd["scored"], "level2_incumbent": evo["incumbent"]}}
    if rounds:
        summary["finalists"] = {name: {"evaluator": r["evaluator"], "k": r["k"], "finalists": r["finalists"],
                                       "kept_search_answer": r["winner"] == r["finalists"][0],
                                       **({"level": round_level} if name == "searched" else {})}
                                for name, r in rounds.items()}
    if len(level2_runs) > 1:  # won: the search whose answer (or, after a level-2 round, candidate) is retrained
        won = rounds["searched"]["winner"]["search"] if round_level == 2 else None
        summary["search"]["level2_runs"] = [
            {"distribution": [b.num_global_heads for b in r["best"].blocks], "score": r["score"],
             "folder": level2_dirs(j)[1], "won": str(d) == won if won else r is evo}
            for j, (_, d, r) in enumerate(level2_searches)]
    for name in FINALISTS:
        c = cost(archs[name])
        tops = [r["top1"] for r in results[name]]
        summary[name] = {"arch": archs[name].to_dict(), "params": c.params, "macs": c.macs,
                         "top1": statistics.fmean(tops),
                         "train_seconds": sum(r["train_seconds"] for r in results[name]),
                         "search_score": scores[name], "seeds": seeds, "top1_seeds": tops,
                         "top1_std": statistics.stdev(tops) if len(tops) > 1 else None}
    if budget.latency is not None:  # a latency budget: each finalist's predicted and measured latency (ms)
        for name, t in zip(FINALISTS, latencies(budget.latency, [archs[name] for name in FINALISTS])):
            summary[name]["latency_ms"] = t
    summary["comparisons"] = comparisons(out, seeds)
    if truth_file.is_file():  # supernet health: how well each supernet ranks a ground truth
        summary["health"] = supernet_health(out, truth_file, cfg, dist, shared)
    if dist.main:
        export_searched(out, shared)
        write_json(out / SUMMARY, summary)  # glit run then writes report.html from the folder
    barrier(dist)
    return summary


def export_searched(out: Path, shared: SharedData) -> None:
    """The searched model, retrained, as ``searched.safetensors`` (always) and ``searched.onnx`` (when onnx and
    onnxruntime are installed), once."""
    checkpoint = out / FINAL_DIRS["searched"] / "checkpoint.pt"
    targets = [(out / "searched.safetensors", "safetensors")]
    if onnx_available():
        targets.append((out / "searched.onnx", "onnx"))
    for file, fmt in targets:
        if not file.is_file():
            export(file, fmt, checkpoint, shared=shared)


def machine_record(dist) -> dict:
    """The machine, torch and glit (version and commit) that a run starts on: for run.json and the report."""
    import torch

    if dist.device.type == "cuda":
        machine = f"{dist.device} ({torch.cuda.get_device_name(dist.device)})"
    else:
        machine = f"CPU, {torch.get_num_threads()} threads"
    machine += f" x {dist.world} processes" if dist.world > 1 else ""
    return {"machine": machine, "torch": torch.__version__, "glit": version_string()}


def banner(cfg: Config, out: Path, dist, split: dict | None, continuing: bool) -> str:
    """What ``glit run`` prints first: the folder, the machine, the data and its splits, and the budget."""
    m = machine_record(dist)
    source = "scikit-learn's digits (bundled)" if cfg.data.source == "digits" else cfg.data.root
    again = " (continuing: finished stages are not redone)" if continuing else ""
    lines = [f"glit run {cfg.preset} -> {out}{again}",
             f"  machine: {m['machine']}; torch {m['torch']}, glit {m['glit']}"]
    if split:
        cut = split.get("train_subset") and split["train_subset"] < split.get("train_images", 0)
        subset = f" (a {split['train_subset']:,}-image subset of {split['train_images']:,})" if cut else ""
        lines.append(f"  data: {source}: {len(split['classes'])} classes; training {split['fit_size']:,} images + "
                     f"search split {split['search_size']:,}{subset}; test {split['test_size']:,}")
    else:
        lines.append(f"  data: {source}")
    space = space_preset(cfg.preset, 1)
    if split:
        space = space_for_data(space, len(split["classes"]))
    whose = " (the DeiT-style architecture's)" if cfg.search.max_macs is None else ""
    lines.append(f"  budget: {make_budget(cfg, space).describe()}{whose}; {space.family.depth} blocks of "
                 f"{space.family.num_heads} heads")
    return "\n".join(lines)


def retrain_seeds(cfg: Config) -> list[int]:
    """The seeds each finalist is retrained with: ``seed``, ``seed + 1``, ... (``run.seeds`` of them)."""
    return [cfg.seed + k for k in range(cfg.run.seeds)]


def comparisons(out: Path, seeds: list[int]) -> dict:
    """The searched architecture against each baseline on the same test images (``glit.verdict``): ``vs_baseline``
    and ``vs_random``, each as ``paired_comparison`` gives it."""
    folders = {name: finalist_folders(out, name, seeds) for name in FINALISTS}
    return {key: paired_comparison(folders["searched"], folders[other])
            for key, other in (("vs_baseline", "baseline"), ("vs_random", "random"))}


def paired_comparison(a_folders: list[Path], b_folders: list[Path]) -> dict:
    """Model a against model b on the same test images: ``difference`` (points), ``ci95``, ``p_value`` and
    ``verdict``. ``a_folders[k]`` and ``b_folders[k]`` are the two trainings of seed k: the disagreements of every
    seed's pair are pooled, so ``difference`` is the mean over seeds, and ``difference_per_seed`` lists them. A
    training done before glit kept per-image results gets the difference of top-1 alone, and null for the rest."""
    counts, per_seed = [0, 0, 0], []
    for a_dir, b_dir in zip(a_folders, b_folders):
        a, b = read_correct(a_dir), read_correct(b_dir)
        if a is None or b is None or len(a) != len(b):
            tops = [statistics.fmean(json.loads((f / "result.json").read_text())["top1"] for f in folders)
                    for folders in (a_folders, b_folders)]
            return {"difference": tops[0] - tops[1], "ci95": None, "p_value": None, "verdict": None}
        seed_counts = paired_counts(a, b)
        counts = [x + y for x, y in zip(counts, seed_counts)]
        per_seed.append(100.0 * (seed_counts[0] - seed_counts[1]) / seed_counts[2])
    return {**compare(*counts), "seeds": len(a_folders), "difference_per_seed": per_seed}


class StageClock:
    """Wall time per stage of a run, in ``OUT/times.json``: a stage resumed by a later ``glit run`` adds the new
    process's time to what the earlier ones spent. ``with clock(folder, title):`` prints the stage's header
    (``[4/9] level-2 supernet``) and, at its end, its time."""

    def __init__(self, out: Path, main: bool, stages: int):
        self.path, self.main, self.stages, self.done = out / "times.json", main, stages, 0
        self.times = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @contextmanager
    def __call__(self, folder: str, title: str):
        self.done += 1
        if self.main:
            print(f"\n[{self.done}/{self.stages}] {title} ({folder})", flush=True)
        start = time.perf_counter()
        yield
        spent = time.perf_counter() - start
        self.times[folder] = round(self.times.get(folder, 0.0) + spent, 1)
        if self.main:
            write_json(self.path, self.times)
            print(f"[{self.done}/{self.stages}] done in {fmt_seconds(spent)}", flush=True)


def stage_space(cfg: Config, level: int, distribution: Arch | None = None) -> SearchSpace:
    """The space of a supernet stage: the preset's level-1 space, the level-2 space around ``distribution``, or with
    none the whole space (every gene free), under ``search.level2_space``."""
    return space_preset(cfg.preset, level, distribution, cfg.search.level2_space, cfg.search.local_ops)


def random_supernet(cfg: Config, out: Path) -> Path:
    """The supernet random search (and ``glit ablate``'s one-level search) scores on: its own whole-space one, or
    with ``search.level2_epochs`` 0 the level-1 supernet (trained over the whole space), as level 2 does."""
    return out / SUPERNET_DIRS["level1" if cfg.search.level2_epochs == 0 else "random"]


def level2_optim(cfg: Config, times: int = 1) -> OptimConfig:
    """The supernet recipe at ``times`` x ``search.level2_epochs`` (and, with the length sized by the data, the same
    share of ``supernet.optim.images``): each level-2 supernet gets it once, and the whole-space supernet of the
    random-search baseline as many times as there are level-2 supernets."""
    o = cfg.supernet.optim
    epochs = times * (cfg.search.level2_epochs or o.epochs)
    images = None if o.images is None else round(o.images * epochs / o.epochs)
    return dataclasses.replace(o, epochs=epochs, images=images)


def level2_distributions(cfg: Config, out: Path, winner: Arch) -> list[Arch]:
    """The level-1 members that level 2 searches around: the winner, then the next best distributions of the level-1
    top-k (``search.level2_topk`` in all; few-shot NAS by distribution: each gets its own level-2 supernet)."""
    k = cfg.search.level2_topk
    topk = [Arch.from_dict(row["arch"]) for row in json.loads((out / SEARCH_DIRS["level1"] / "topk.json").read_text())]
    return [winner, *[a for a in topk if a != winner]][:k]


def pick_distribution(out: Path, round_: dict | None = None) -> Arch:
    """The level-1 winner: the finalist round's (``round_``, what ``finalists.json`` holds), or else the level-1
    search's best-scored distribution. ``pick.json`` records it, the search's top-k, and which of the two decided."""
    folder = out / PICK_DIR
    topk = json.loads((out / SEARCH_DIRS["level1"] / "topk.json").read_text())
    candidates = [{"arch": row["arch"], "score": row["score"]} for row in topk]
    winner = Arch.from_dict(round_["winner"]["arch"] if round_ else candidates[0]["arch"])
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "pick.json", {"winner": winner.to_dict(), "decided_by": "round" if round_ else "search",
                                      "candidates": candidates})
    return winner


