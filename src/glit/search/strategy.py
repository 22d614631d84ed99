"""Evolutionary and random search over a ``SearchSpace``, in plain Python (no torch).

Both take an injected ``fitness`` (a list of architectures -> a list of scores, higher is better) and ``budget``
(an architecture -> whether it may be scored), so tests run them with a toy fitness in milliseconds. Fitness gets
the candidates of one generation at a time, so a distributed fitness can spread them over ranks.

Evolution follows single-path one-shot NAS (Guo et al., 2020), which GLiT builds on:
1. generation 0 is the ``seeds`` (e.g. the level-1 winner, for the level-2 search), topped up with random candidates
   under the budget to ``population``;
2. after scoring, the ``parents`` best candidates seen so far are kept;
3. the next generation is ``mutations`` mutants of random parents (each gene resampled with ``mutate_prob``) and
   ``crossovers`` uniform crossovers of two random parents, topped up with random candidates to ``population``.

A candidate over the budget is rejected before it is scored, and so is one already scored or already in the
generation: no architecture is scored twice. Each way of making a candidate gets at most ``max_tries`` attempts per
generation. The whole state (population, every scored candidate, RNG state) is a JSON-able dict, saved after each
generation, and a search resumed from it ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from glit.errors import GlitError
from glit.space import Arch, SearchSpace

Fitness = Callable[[list[Arch]], list[float]]
Budget = Callable[[Arch], bool]


@dataclass
class EvolutionConfig:
    population: int = 50
    generations: int = 20
    parents: int = 10
    mutations: int = 25
    crossovers: int = 25
    mutate_prob: float = 0.1
    max_tries: int = 1000


@dataclass
class Candidate:
    arch: Arch
    score: float
    generation: int

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "score": self.score, "generation": self.generation}

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        return cls(Arch.from_dict(data["arch"]), data["score"], data["generation"])


@dataclass
class SearchState:
    """Everything a search needs to continue: the next generation to score, every scored candidate, the RNG."""

    generation: int
    scored: list[Candidate]
    rng_state: tuple

    def best(self, k: int = 1) -> list[Candidate]:
        """The ``k`` best candidates; ties go to the one scored first."""
        order = sorted(range(len(self.scored)), key=lambda i: (-self.scored[i].score, i))
        return [self.scored[i] for i in order[:k]]

    def to_dict(self) -> dict:
        version, internal, gauss = self.rng_state
        return {"generation": self.generation, "scored": [c.to_dict() for c in self.scored],
                "rng_state": [version, list(internal), gauss]}

    @classmethod
    def from_dict(cls, data: dict) -> SearchState:
        version, internal, gauss = data["rng_state"]
        return cls(data["generation"], [Candidate.from_dict(c) for c in data["scored"]],
                   (version, tuple(internal), gauss))


def evolve(space: SearchSpace, fitness: Fitness, budget: Budget, cfg: EvolutionConfig, rng: random.Random,
           state: SearchState | None = None, on_generation: Callable[[SearchState], None] | None = None,
           seeds: Sequence[Arch] = ()) -> SearchState:
    """Run (or continue, from ``state``) the evolutionary search; return the final state. ``seeds`` start
    generation 0 (those over the budget are left out)."""
    if cfg.parents < 1 or cfg.population < 1:
        raise GlitError("search: population and parents must be at least 1")
    state = _start(state, rng)
    while state.generation < cfg.generations:
        seen = {c.arch for c in state.scored}
        if state.generation == 0:
            batch = _fill(list(dict.fromkeys(a for a in seeds if budget(a)))[:cfg.population], space, budget, seen,
                          cfg.population, rng, cfg.max_tries)
        else:
            parents = [c.arch for c in state.best(cfg.parents)]

            def mutant(parents=parents):
                return space.mutate(rng.choice(parents), rng, cfg.mutate_prob)

            def crossover(parents=parents):
                return space.crossover(rng.choice(parents), rng.choice(parents), rng)

            batch = _children(mutant, [], budget, seen, cfg.mutations, cfg.max_tries)
            batch = _children(crossover, batch, budget, seen, cfg.mutations + cfg.crossovers, cfg.max_tries)
            batch = _fill(batch, space, budget, seen, cfg.population, rng, cfg.max_tries)
        state = _score(state, batch, fitness, rng)
        if on_generation:
            on_generation(state)
    return state


def random_search(space: SearchSpace, fitness: Fitness, budget: Budget, num_candidates: int, batch_size: int,
                  rng: random.Random, state: SearchState | None = None,
                  on_generation: Callable[[SearchState], None] | None = None, max_tries: int = 1000) -> SearchState:
    """Score ``num_candidates`` distinct random architectures under the budget, ``batch_size`` per generation."""
    state = _start(state, rng)
    generations = random_generations(num_candidates, batch_size)
    while state.generation < generations:
        seen = {c.arch for c in state.scored}
        want = min(batch_size, num_candidates - len(state.scored))
        batch = _fill([], space, budget, seen, want, rng, max_tries)
        state = _score(state, batch, fitness, rng)
        if on_generation:
            on_generation(state)
    return state


def random_generations(num_candidates: int, batch_size: int) -> int:
    """How many generations (batches, the last one maybe partial) random search takes to score ``num_candidates``."""
    return -(-num_candidates // batch_size)


def _start(state: SearchState | None, rng: random.Random) -> SearchState:
    if state is None:
        return SearchState(0, [], rng.getstate())
    rng.setstate(state.rng_state)
    return state


def _score(state: SearchState, batch: list[Arch], fitness: Fitness, rng: random.Random) -> SearchState:
    scores = fitness(batch) if batch else []
    scored = [Candidate(a, float(s), state.generation) for a, s in zip(batch, scores)]
    return SearchState(state.generation + 1, state.scored + scored, rng.getstate())


def _children(make: Callable[[], Arch], batch: list[Arch], budget: Budget, seen: set, target: int,
              max_tries: int) -> list[Arch]:
    """Add candidates from ``make`` until ``batch`` has ``target``, skipping seen and over-budget ones."""
    batch, taken = list(batch), set(batch)
    for _ in range(max_tries):
        if len(batch) >= target:
            break
        arch = make()
        if arch not in seen and arch not in taken and budget(arch):
            batch.append(arch)
            taken.add(arch)
    return batch


def _fill(batch: list[Arch], space: SearchSpace, budget: Budget, seen: set, target: int, rng: random.Random,
          max_tries: int) -> list[Arch]:
    """Top ``batch`` up with random candidates. Fails loudly if none at all can be found under the budget."""
    filled = _children(lambda: space.sample(rng), batch, budget, seen, target, max_tries)
    if not filled and target > 0 and not seen:
        raise GlitError(f"search: no architecture under the budget in {max_tries} random samples; raise the budget")
    return filled
