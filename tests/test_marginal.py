"""Level-1 scoring with the detail genes marginalised (glit.search.marginal): plain Python, a toy fitness."""

import random

from glit.cost import cost
from glit.search import Budget
from glit.search.marginal import detail_draws, marginal_fitness
from helpers import assert_one_line_error, run_glit


def test_draws_keep_the_distribution_meet_the_budget_and_repeat(toy_space):
    level1 = toy_space.fix(qkv_ratio=1, mlp_ratio=4, conv_ratio=1, kernel_size=5)
    arch = level1.sample(random.Random(3))
    same = toy_space.fix(num_global_heads=[b.num_global_heads for b in arch.blocks])
    params = sorted(cost(same.sample(random.Random(i))).params for i in range(200))
    light = Budget(max_params=params[len(params) // 2])  # about half the settings of this distribution fit
    draws = detail_draws(arch, toy_space, light, 6, seed=0)
    assert len(draws) == 6 == len(set(draws))
    g = [b.num_global_heads for b in arch.blocks]
    assert all([b.num_global_heads for b in d.blocks] == g and light(d) and toy_space.contains(d) for d in draws)
    assert detail_draws(arch, toy_space, light, 6, seed=0) == draws  # a function of the distribution and seed
    assert detail_draws(arch, toy_space, light, 6, seed=1) != draws
    assert detail_draws(arch, level1, Budget(), 6, seed=0) == [arch]  # a level-1 space has one setting
    assert detail_draws(arch, toy_space, Budget(max_params=1), 6, seed=0) == [arch]  # none under the budget


def test_marginal_score_is_the_mean_over_the_draws_in_one_fitness_call(toy_space):
    calls = []

    def fitness(archs):
        calls.append(list(archs))
        return [float(sum(b.mlp_ratio for b in a.blocks)) for a in archs]

    level1 = toy_space.fix(qkv_ratio=1, mlp_ratio=4, conv_ratio=1, kernel_size=5)
    archs = [level1.sample(random.Random(i)) for i in range(3)]
    scores = marginal_fitness(fitness, toy_space, Budget(), 4, seed=0)(archs)
    assert len(calls) == 1 and len(calls[0]) == 12  # every draw of the batch in one call (spread over ranks)
    for arch, score in zip(archs, scores):
        draws = detail_draws(arch, toy_space, Budget(), 4, seed=0)
        assert score == sum(fitness([d])[0] for d in draws) / len(draws)


def test_marginal_level1_scoring_needs_a_whole_space_level1_supernet(tmp_path):
    proc = run_glit("run", "demo", "--out", tmp_path / "run", "--set", "search.level1_scoring=marginal")
    assert_one_line_error(proc, "search.level1_supernet=whole")
    proc = run_glit("run", "demo", "--out", tmp_path / "run", "--set", "search.level1_scoring=mean")
    assert_one_line_error(proc, "search.level1_scoring", "'mean'")
    assert not (tmp_path / "run").exists()
