"""Evolution and random search with toy fitness functions: plain Python, milliseconds."""

import math
import random
import statistics
import subprocess
import sys

import pytest

from glit.cost import cost, extremes
from glit.errors import GlitError
from glit.genes import GENE_NAMES
from glit.search import Budget, EvolutionConfig, SearchState, evolve, random_search
from glit.space import Family, SearchSpace
from glit.units import parse_count

FAMILY = Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=2, num_classes=5)
SPACE = SearchSpace.uniform(FAMILY, num_global_heads=(0, 1, 2, 3), qkv_ratio=(0.5, 1, 2), mlp_ratio=(2, 4, 6),
                            conv_ratio=(1, 2, 4), kernel_size=(3, 5, 7))
TARGET = SPACE.sample(random.Random(1234))


class CountingFitness:
    """Genes equal to TARGET's (None counts as equal to None). Records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, archs):
        self.calls.extend(archs)
        return [sum(getattr(a, g) == getattr(t, g) for a, t in zip(arch.blocks, TARGET.blocks) for g in GENE_NAMES)
                for arch in archs]


OPTIMUM = len(GENE_NAMES) * FAMILY.depth
NO_BUDGET = Budget()


def evals_to_optimum(state: SearchState) -> int:
    for i, c in enumerate(state.scored):
        if c.score == OPTIMUM:
            return i + 1
    return len(state.scored) + 1  # not found: count as one past the end


def test_the_space_size_is_the_number_of_distinct_members_random_search_can_draw():
    """Counted by hand: per block, all-local 1 x 3 mlp x 3 conv x 3 kernel = 27, all-global 3 qkv x 3 mlp = 9, and each
    of the two mixes 3 x 3 x 3 x 3 = 81: 198 options, 198^2 members. Every draw is a member, and in a space of 16
    random search (which draws without repeats) finds exactly 16 distinct members when asked for more."""
    assert SPACE.size() == (27 + 9 + 2 * 81) ** 2
    members = {SPACE.sample(random.Random(seed)) for seed in range(2000)}
    assert all(SPACE.contains(a) for a in members)
    small = SearchSpace.uniform(FAMILY, num_global_heads=(0, 3), qkv_ratio=(1, 2), mlp_ratio=(4,), conv_ratio=(1,),
                                kernel_size=(3, 5))
    assert small.size() == (2 + 2) ** 2
    found = random_search(small, CountingFitness(), NO_BUDGET, 100, 10, random.Random(0))
    assert len({c.arch for c in found.scored}) == small.size() == len(found.scored)


def test_evolution_finds_the_optimum_and_beats_random_search_on_average():
    cfg = EvolutionConfig(population=50, generations=60, parents=10, mutations=25, crossovers=25, mutate_prob=0.1)
    evo, rnd = [], []
    for seed in range(5):
        e = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(seed))
        assert e.best()[0].score == OPTIMUM and e.best()[0].arch == TARGET
        evo.append(evals_to_optimum(e))
        r = random_search(SPACE, CountingFitness(), NO_BUDGET, 50 * 60, 50, random.Random(seed))
        rnd.append(evals_to_optimum(r))
    assert statistics.mean(evo) < statistics.mean(rnd) / 3, (evo, rnd)


def test_fitness_is_called_once_per_architecture_and_never_over_budget():
    lo, hi = (cost(a).macs for a in extremes(SPACE))
    budget = Budget(max_macs=lo + 0.3 * (hi - lo))
    fitness = CountingFitness()
    state = evolve(SPACE, fitness, budget, EvolutionConfig(population=30, generations=10), random.Random(0))
    assert len(fitness.calls) == len(set(fitness.calls)) == len(state.scored)
    assert all(budget(a) for a in fitness.calls)
    assert all(cost(a).macs <= budget.max_macs for a in fitness.calls)
    assert len(state.scored) > 100  # the budget leaves room; the search did not stall
    rnd = CountingFitness()
    random_search(SPACE, rnd, budget, 200, 40, random.Random(0))
    assert len(rnd.calls) == len(set(rnd.calls)) == 200 and all(budget(a) for a in rnd.calls)


def test_generation_sizes_follow_the_config():
    cfg = EvolutionConfig(population=20, generations=4, parents=5, mutations=8, crossovers=8)
    state = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(3))
    per_gen = [sum(c.generation == g for c in state.scored) for g in range(4)]
    assert per_gen == [20, 20, 20, 20]


def test_seeds_start_generation_zero_unless_over_budget():
    lo, hi = (cost(a).macs for a in extremes(SPACE))
    budget = Budget(max_macs=lo + 0.5 * (hi - lo))
    cheap, dear = extremes(SPACE)
    cfg = EvolutionConfig(population=10, generations=2, parents=3, mutations=3, crossovers=3)
    fitness = CountingFitness()
    state = evolve(SPACE, fitness, budget, cfg, random.Random(5), seeds=[cheap, dear, cheap])
    gen0 = [c.arch for c in state.scored if c.generation == 0]
    assert gen0[0] == cheap and dear not in gen0  # the over-budget seed is left out, the repeated one counted once
    assert len(gen0) == len(set(gen0)) == 10
    assert fitness.calls.count(cheap) == 1


def test_children_come_from_the_parents():
    """With crossovers only, every gene of every child of generation 1 comes from one of the two best parents."""
    cfg = EvolutionConfig(population=6, generations=2, parents=2, mutations=0, crossovers=6, mutate_prob=0.0)
    state = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(5))
    parents = [c.arch for c in SearchState(1, [c for c in state.scored if c.generation == 0], ()).best(2)]
    children = [c.arch for c in state.scored if c.generation == 1]
    assert len(children) >= 2 and any(c not in parents for c in children)
    recombined = 0
    for child in children:
        from_parents = all(getattr(block, g) is None or getattr(block, g) in {getattr(p.blocks[i], g) for p in parents}
                           for i, block in enumerate(child.blocks) for g in GENE_NAMES)
        recombined += from_parents
    # 2 parents give at most 2^10 children, so crossovers fill the generation; random top-ups would rarely pass
    assert recombined == len(children)


def test_same_seed_same_search_and_resume_from_any_generation_is_exact():
    cfg = EvolutionConfig(population=12, generations=6, parents=4, mutations=5, crossovers=5)
    full = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(9))
    again = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(9))
    assert full.to_dict() == again.to_dict()
    saved = []
    evolve(SPACE, CountingFitness(), NO_BUDGET, EvolutionConfig(**{**cfg.__dict__, "generations": 3}),
           random.Random(9), on_generation=lambda st: saved.append(st.to_dict()))
    resumed = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(0),
                     state=SearchState.from_dict(saved[-1]))
    assert resumed.to_dict() == full.to_dict()
    other = evolve(SPACE, CountingFitness(), NO_BUDGET, cfg, random.Random(10))
    assert other.to_dict() != full.to_dict()


def test_random_search_resumes_exactly():
    full = random_search(SPACE, CountingFitness(), NO_BUDGET, 50, 10, random.Random(2))
    saved = []
    random_search(SPACE, CountingFitness(), NO_BUDGET, 20, 10, random.Random(2),
                  on_generation=lambda st: saved.append(st.to_dict()))
    resumed = random_search(SPACE, CountingFitness(), NO_BUDGET, 50, 10, random.Random(7),
                            state=SearchState.from_dict(saved[-1]))
    assert resumed.to_dict() == full.to_dict()


def test_impossible_budget_names_the_smallest_member():
    smallest = cost(extremes(SPACE)[0])
    with pytest.raises(GlitError, match=f"{smallest.macs / 1e6:.2f} M MACs") as err:
        Budget(max_macs=smallest.macs - 1).check_feasible(SPACE)
    assert f"{smallest.params:,} params" in str(err.value)
    Budget(max_macs=smallest.macs).check_feasible(SPACE)  # exactly the smallest is feasible
    with pytest.raises(GlitError, match="params"):
        Budget(max_params=10).check_feasible(SPACE)


def test_sampling_that_cannot_meet_the_budget_stops_with_an_error():
    """Feasible in principle (the smallest member fits) but too rare to sample: bounded, then a clear error."""
    budget = Budget(max_macs=cost(extremes(SPACE)[0]).macs)
    with pytest.raises(GlitError, match="no architecture under the budget"):
        evolve(SPACE, CountingFitness(), budget, EvolutionConfig(population=5, generations=1, max_tries=50),
               random.Random(0))


@pytest.mark.parametrize("text, value", [("1.3G", 1.3e9), ("45M", 45e6), ("2e6", 2e6), ("inf", math.inf),
                                         (None, math.inf), (5, 5.0), ("300k", 3e5)])
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["lots", "-3M", "0"])
def test_parse_count_rejects_bad_values(text):
    with pytest.raises(GlitError, match="max_macs"):
        parse_count(text, "max_macs")


def test_search_strategies_import_without_torch():
    code = "import sys; import glit.search.strategy, glit.search.budget; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
