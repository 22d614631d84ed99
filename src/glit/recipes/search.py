"""Search a trained supernet under a budget, and write what the search found.

``--out DIR`` gets ``config.yaml``, ``search_state.json`` (saved after every generation: a resumed search ends
exactly as an uninterrupted one), ``candidates.jsonl`` (one line per scored candidate: arch, params, macs, score,
generation), ``best.json`` (an architecture file: the best score, and among equal scores the fewest MACs),
``topk.json`` (the ``search.topk`` best), ``pareto.json`` (the candidates that no other beats on both score and
MACs) and ``result.json``.

An **incumbent** (``glit run`` passes the level-1 winner to the level-2 search) is scored in generation 0 and stays
the answer unless a candidate beats its score by more than ``search.incumbent_margin`` binomial standard errors of the
search split. Without it, a flat or noisy fitness would hand over the luckiest of many near-equal candidates (the
winner's curse); ``result.json`` says whether the incumbent was kept, and by what margin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from pathlib import Path

from tqdm import tqdm

from glit.config import STRATEGIES, Config, apply, set_value, validate
from glit.cost import cost
from glit.data.build import SharedData, load_data
from glit.errors import GlitError
from glit.files import write_json, write_jsonl
from glit.folder import prepare_out, write_config
from glit.presets import deit
from glit.scoring.supernet import supernet_fitness
from glit.search.budget import Budget
from glit.search.latency import LatencyTable
from glit.search.marginal import marginal_fitness
from glit.search.strategy import (
    Candidate,
    EvolutionConfig,
    SearchState,
    evolve,
    random_generations,
    random_search,
)
from glit.space import Arch, SearchSpace
from glit.text import fmt_seconds
from glit.train.board import Board
from glit.train.checkpoint import expect_kind, load_checkpoint
from glit.train.dist import init_distributed
from glit.units import parse_count, parse_ms

STATE = "search_state.json"


def supernet_checkpoint(path: str | Path) -> tuple[dict, Path]:
    """A supernet checkpoint from a file or a ``glit train-supernet`` output folder."""
    path = Path(path)
    file = path / "checkpoint.pt" if path.is_dir() else path
    ckpt = load_checkpoint(file)
    expect_kind(ckpt, "supernet", file, "pass a folder (or its checkpoint.pt) written by glit train-supernet")
    if "space" not in ckpt:
        raise GlitError(f"{file}: the supernet checkpoint holds no search space; it was not written by glit")
    return ckpt, file


def search_config(ckpt: dict, file: Path, overrides: list[str] = ()) -> Config:
    """The supernet run's config, with the search keys (and any other) overridden."""
    if not isinstance(ckpt.get("config"), dict):
        raise GlitError(f"{file}: the checkpoint holds no run config; it was not written by glit train-supernet")
    cfg = validate(apply(Config(), ckpt["config"], f"{file}: config"), f"{file}: config")
    for assignment in overrides:
        set_value(cfg, assignment)
    return validate(cfg, "--set")


def make_budget(cfg: Config, space: SearchSpace) -> Budget:
    """``search.max_macs`` None means the MACs of the all-global, DeiT-style architecture of the family;
    ``search.max_latency`` (with ``search.latency_lut``) adds a predicted-latency limit."""
    s = cfg.search
    max_macs = cost(deit(space.family), s.convention).macs if s.max_macs is None else \
        parse_count(s.max_macs, "search.max_macs")
    if s.max_latency is None:
        return Budget(max_macs, parse_count(s.max_params, "search.max_params"), s.convention)
    if not s.latency_lut:
        raise GlitError("search.max_latency needs search.latency_lut (--lut FILE, from glit latency build)")
    return Budget(max_macs, parse_count(s.max_params, "search.max_params"), s.convention,
                  parse_ms(s.max_latency), LatencyTable.load(s.latency_lut))


def search(cfg: Config, supernet: str | Path, out: str | Path, resume: bool = False,
           incumbent: Arch | None = None, space: SearchSpace | None = None,
           marginal: SearchSpace | None = None, shared: SharedData | None = None,
           strategy: str | None = None, generations: int | None = None, candidates: int | None = None) -> dict:
    """Search ``space`` (default: the supernet's whole space; else a part of it) on the supernet in ``supernet``.
    With ``marginal`` (a part of the supernet's space), each candidate scores as the mean of
    ``search.marginal_samples`` members of ``marginal`` with its distribution (``glit.search.marginal``).
    ``strategy`` (evolution or random), evolution's ``generations`` and random search's ``candidates`` default to
    ``search.strategy``, ``search.generations`` and ``search.random_candidates`` (or population x generations);
    ``glit run`` passes each search's own, and ``stage.json`` records them (``glit.folder``)."""
    out = Path(out)
    ckpt, file = supernet_checkpoint(supernet)
    s = cfg.search
    trained = SearchSpace.from_dict(ckpt["space"], f"{file}: space")
    if space is None:
        space = trained
    elif not trained.includes(space):
        raise GlitError(f"{file}: the searched space is not part of the supernet's space")
    if marginal is not None and not trained.includes(marginal):
        raise GlitError(f"{file}: the space of the marginalised details is not part of the supernet's space")
    strategy = strategy or s.strategy
    if strategy not in STRATEGIES:
        raise GlitError(f"search strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    generations = generations or s.generations
    candidates = candidates or s.random_candidates or s.population * generations
    if strategy == "random":
        generations = random_generations(candidates, s.population)
    stage = {"strategy": strategy, "generations": generations, "candidates": candidates, "space": space.to_dict()}
    dist = init_distributed(cfg.device)
    resume_from = prepare_out(out, cfg, resume, dist, state=STATE, command="glit search", stage=stage)
    budget = make_budget(cfg, space)
    budget.check_feasible(space)
    if incumbent is not None:
        _check_incumbent(incumbent, space, budget, strategy)
    state = _read_state(resume_from) if resume_from else None
    if state is not None and incumbent is not None and incumbent not in {c.arch for c in state.scored}:
        raise GlitError(f"{out / STATE}: this search was started without the incumbent architecture; "
                        "search into a new --out")
    if state is not None and state.generation >= generations:
        return _summary(choose(state, incumbent, cfg), budget)  # a finished search: nothing to load or score

    fitness = supernet_fitness(cfg, ckpt, file, load_data(cfg, shared), dist)
    if marginal is not None:
        fitness = marginal_fitness(fitness, marginal, budget, s.marginal_samples, cfg.seed)
    write_config(out, cfg, dist, stage)
    rng = random.Random(f"search:{cfg.seed}")
    evo = EvolutionConfig(s.population, generations, s.parents, s.mutations, s.crossovers, s.mutate_prob,
                          s.max_tries)
    first, start = state.generation if state else 0, time.perf_counter()
    bar = tqdm(total=generations, initial=first, desc=f"search ({strategy})",
               disable=None if dist.main else True, dynamic_ncols=True)
    board = Board(out, cfg.log.tensorboard and dist.main,
                  [(g + 1, generation_scalars(state, g)) for g in range(first)] if state else [])

    def save(st: SearchState) -> None:
        bar.update(1)
        best = st.best()[0]
        bar.set_postfix(best=f"{best.score:.2f}", scored=len(st.scored))
        board.add(st.generation, generation_scalars(st, st.generation - 1))
        if dist.main:
            write_outputs(out, choose(st, incumbent, cfg), budget, s.topk)
            done = st.generation - first  # generations scored by this process: the ETA of the rest
            spent = time.perf_counter() - start
            eta = f"  ETA {fmt_seconds(spent / done * (generations - st.generation))}" if done > 0 else ""
            if strategy == "random":  # scored in batches of population; no generations to speak of
                print(f"random search: {len(st.scored)}/{candidates} candidates scored  best {best.score:.2f}{eta}",
                      flush=True)
            else:
                newest = [c.score for c in st.scored if c.generation == st.generation - 1]
                print(f"search generation {st.generation}/{generations}  best {best.score:.2f}  "
                      f"this generation: {len(newest)} scored, best {max(newest, default=math.nan):.2f}{eta}",
                      flush=True)

    if strategy == "evolution":  # else random
        state = evolve(space, fitness, budget, evo, rng, state, save, seeds=[incumbent] if incumbent else [])
    else:
        state = random_search(space, fitness, budget, candidates, s.population, rng, state, save, s.max_tries)
    bar.close()
    board.close()
    answer = choose(state, incumbent, cfg)
    if dist.main:
        write_outputs(out, answer, budget, s.topk)
    return _summary(answer, budget)


def generation_scalars(state: SearchState, generation: int) -> dict:
    """TensorBoard's points of one generation (0-based): the best score so far and the generation's mean."""
    scores = [c.score for c in state.scored if c.generation <= generation]
    newest = [c.score for c in state.scored if c.generation == generation]
    return {"search/best": max(scores, default=math.nan), "search/mean": sum(newest) / max(len(newest), 1)}


def _check_incumbent(arch: Arch, space: SearchSpace, budget: Budget, strategy: str) -> None:
    if strategy != "evolution":
        raise GlitError(f"an incumbent architecture applies to the evolutionary search, not search.strategy="
                        f"{strategy!r}")
    try:
        space.check(arch)
    except GlitError as err:
        raise GlitError(f"the incumbent architecture is not in the searched space: {err}") from None
    if not budget(arch):
        raise GlitError(f"the incumbent architecture is over the budget ({budget.describe()})")


@dataclasses.dataclass
class Answer:
    """What a search answers: ``best``, and, given an incumbent, how the incumbent fared (``None`` without one)."""

    state: SearchState
    best: Candidate
    incumbent: dict | None = None


def choose(state: SearchState, incumbent: Arch | None, cfg: Config) -> Answer:
    """The best-ranked candidate; or, given an incumbent, the incumbent unless the best beats its score by more than
    ``search.incumbent_margin`` binomial standard errors of a ``data.search_size``-image split at its accuracy."""
    best = ranked(state)[0]
    if incumbent is None:
        return Answer(state, best)
    held = next(c for c in state.scored if c.arch == incumbent)
    p = held.score / 100
    margin = 100 * cfg.search.incumbent_margin * math.sqrt(p * (1 - p) / cfg.data.search_size)
    kept = best.score <= held.score + margin
    info = {"score": held.score, "margin_points": margin, "kept": kept, "best_score": best.score}
    return Answer(state, held if kept else best, info)


def _summary(answer: Answer, budget: Budget) -> dict:
    c = cost(answer.best.arch)
    return {"best": answer.best.arch, "score": answer.best.score, "params": c.params, "macs": c.macs,
            "scored": len(answer.state.scored), "budget": budget.describe(), "incumbent": answer.incumbent}


def write_outputs(out: Path, answer: Answer, budget: Budget, topk: int) -> None:
    """Every file the search writes, from its state alone (so a resumed search rewrites them identically)."""
    state = answer.state
    rows = [_row(c, budget) for c in state.scored]
    write_jsonl(out / "candidates.jsonl", rows)
    write_json(out / "best.json", answer.best.arch.to_dict())
    write_json(out / "topk.json", [_row(c, budget) for c in ranked(state)[:topk]])
    write_json(out / "pareto.json", pareto(rows, "latency_ms" if budget.latency else "macs"))
    block_macs = [b.total.macs for b in cost(answer.best.arch).blocks]  # the report draws them; it computes none
    write_json(out / "result.json", {**_row(answer.best, budget), "block_macs": block_macs, "scored": len(rows),
                                     "generations": state.generation,
                                     "budget": budget.to_dict(), "budget_text": budget.describe(),
                                     "incumbent": answer.incumbent})
    write_json(out / STATE, state.to_dict())  # last: a crash before this re-runs the generation, same result


def ranked(state: SearchState) -> list:
    """Scored candidates, best first; among equal scores the one with fewer MACs wins (then the first scored)."""
    order = sorted(range(len(state.scored)),
                   key=lambda i: (-state.scored[i].score, cost(state.scored[i].arch).macs, i))
    return [state.scored[i] for i in order]


def pareto(rows: list[dict], cost_key: str = "macs") -> list[dict]:
    """Candidates not dominated by another (at least as good on both score and cost, better on one). The cost is
    ``cost_key`` of each row: its MACs, or its predicted latency (``latency_ms``) in a search under a latency budget."""
    front = []
    for r in sorted(rows, key=lambda r: (r[cost_key], -r["score"])):
        if not front or r["score"] > front[-1]["score"]:
            front.append(r)
    return front


def _row(c, budget: Budget) -> dict:
    """A scored candidate as the search's files record it; with a latency table, its predicted latency too."""
    k = cost(c.arch)
    row = {"arch": c.arch.to_dict(), "params": k.params, "macs": k.macs, "score": c.score,
           "generation": c.generation}
    if budget.latency is not None:
        row["latency_ms"] = budget.latency.predict(c.arch)
    return row


def _read_state(file: Path) -> SearchState:
    try:
        return SearchState.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise GlitError(f"{file}: unreadable search state ({err.__class__.__name__}); remove it to start the search "
                        "again, or use another --out") from None
