"""The search space: genes, Arch values, sampling, mutation, crossover, sizes and JSON (SPEC 1.2, 3.5, 3.6)."""

import dataclasses
import itertools
import json
import random
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from glit import Arch, Family, GlitError, SearchSpace
from glit.genes import GENE_NAMES, GENES, LOCAL_OPS, applies
from glit.presets import arch_preset, level1_part, space_preset
from helpers import block

NAMES = ("demo", "cifar", "tiny")
FIXED = {f"{name}-L{level}": space_preset(name, level) for name in NAMES for level in (1, 2)}
FIXED.update({f"{name}-paper": space_preset(name, 2, level2_space="paper") for name in NAMES})
PROPERTY = settings(max_examples=50, deadline=None)
seeds = st.integers(0, 2**32 - 1)


@st.composite
def spaces(draw) -> SearchSpace:
    """A preset's level-1 or full level-2 space, or a level-2 space around a sampled level-1 architecture."""
    name = draw(st.sampled_from(NAMES))
    kind = draw(st.sampled_from(("L1", "L2", "L2-around", "paper", "paper-around", "ops")))
    if kind == "ops":  # every local operator at once
        return space_preset(name, 2, local_ops=tuple(LOCAL_OPS))
    if not kind.endswith("-around"):
        return FIXED[f"{name}-{kind}"]
    distribution = FIXED[f"{name}-L1"].sample(random.Random(draw(seeds)))
    return space_preset(name, 2, distribution=distribution,
                                   level2_space="paper" if kind.startswith("paper") else "full")


def _replace_block(arch: Arch, i: int, **genes) -> Arch:
    blocks = list(arch.blocks)
    blocks[i] = dataclasses.replace(blocks[i], **genes)
    return Arch(arch.family, tuple(blocks))


# -- samples, mutants and crossovers --------------------------------------------------------------------------------


@PROPERTY
@given(space=spaces(), seed=seeds, prob=st.floats(0, 1))
def test_samples_mutants_and_crossovers_stay_in_the_space(space, seed, prob):
    rng = random.Random(seed)
    a, b = space.sample(rng), space.sample(rng)
    assert space.contains(a) and space.contains(b)
    assert space.contains(space.mutate(a, rng, prob))
    child = space.crossover(a, b, rng)
    assert space.contains(child)
    for ga, gb, gc in zip(a.blocks, b.blocks, child.blocks):
        for gene in GENE_NAMES:
            value = getattr(gc, gene)
            assert value is None or value in (getattr(ga, gene), getattr(gb, gene)), gene


@PROPERTY
@given(space=spaces(), seed=seeds)
def test_genes_are_none_exactly_when_they_do_not_apply(space, seed):
    rng = random.Random(seed)
    a = space.sample(rng)
    h = space.family.num_heads
    for arch in (a, space.mutate(a, rng, 0.5), space.crossover(a, space.sample(rng), rng)):
        for genes in arch.blocks:
            g = genes.num_global_heads
            assert (genes.qkv_ratio is None) == (g == 0)
            assert (genes.conv_ratio is None) == (genes.local_op is None) == (g == h)
            for gene in GENES:  # and so for any gene declared
                assert (getattr(genes, gene.name) is None) == (not applies(gene, g, h)), gene.name


@PROPERTY
@given(space=spaces(), seed=seeds)
def test_json_round_trip(space, seed):
    rng = random.Random(seed)
    for arch in (space.sample(rng), space.mutate(space.sample(rng), rng, 0.3)):
        for text in (arch.to_json(), arch.to_json(indent=None)):
            back = Arch.from_json(text)
            assert back == arch
            assert hash(back) == hash(arch)
            assert back.to_json() == arch.to_json()


@PROPERTY
@given(space=spaces(), seed=seeds)
def test_same_seed_gives_same_sequence_and_leaves_global_rng_alone(space, seed):
    def run(rng):
        samples = [space.sample(rng) for _ in range(4)]
        return samples + [space.mutate(samples[0], rng, 0.5), space.crossover(samples[1], samples[2], rng)]

    state = random.getstate()
    first = run(random.Random(seed))
    assert random.getstate() == state  # nothing reads or seeds the global RNG
    random.seed(seed + 1)
    assert run(random.Random(seed)) == first


@PROPERTY
@given(space=spaces(), s1=seeds, s2=seeds)
def test_different_seeds_give_different_samples(space, s1, s2):
    assume(s1 != s2)
    # The smallest space here has 9**4 members, so three equal draws in a row are vanishingly unlikely.
    assert [space.sample(random.Random(s1)) for _ in range(3)] != [space.sample(random.Random(s2)) for _ in range(3)]


@pytest.mark.parametrize("key", sorted(FIXED))
def test_first_samples_of_twenty_seeds_differ(key):
    first = [FIXED[key].sample(random.Random(s)) for s in range(20)]
    assert len(set(first)) >= 15


@PROPERTY
@given(space=spaces(), seed=seeds)
def test_mutation_with_prob_zero_is_identity(space, seed):
    rng = random.Random(seed)
    arch = space.sample(rng)
    assert space.mutate(arch, rng, 0.0) == arch


@pytest.mark.parametrize("key", sorted(FIXED))
def test_mutation_with_prob_one_changes_something(key):
    space = FIXED[key]
    rng = random.Random(0)
    arch = space.sample(rng)
    assert any(space.mutate(arch, rng, 1.0) != arch for _ in range(20))


def test_mutation_with_prob_one_resamples_every_gene():
    space = FIXED["demo-L2"]
    rng = random.Random(1)
    arch = space.sample(rng)
    mutants = [space.mutate(arch, rng, 1.0) for _ in range(400)]
    for i, choices in enumerate(space.blocks):
        for gene in GENE_NAMES:
            seen = {getattr(m.blocks[i], gene) for m in mutants} - {None}
            assert seen == set(getattr(choices, gene)), (i, gene)


def test_crossover_mixes_both_parents():
    space = FIXED["demo-L2"]
    fam = space.family
    a = Arch(fam, (block(1, 0.5, 2, 1, 3),) * fam.depth)
    b = Arch(fam, (block(2, 2, 6, 4, 9),) * fam.depth)
    rng = random.Random(4)
    children = [space.crossover(a, b, rng) for _ in range(50)]
    for i in range(fam.depth):
        for gene in GENE_NAMES:
            assert {getattr(c.blocks[i], gene) for c in children} == {getattr(a.blocks[i], gene),
                                                                      getattr(b.blocks[i], gene)}, (i, gene)
    assert space.crossover(a, a, rng) == a


def test_sampling_is_uniform_over_the_distinct_architectures():
    rng = random.Random(2)
    level1 = FIXED["demo-L1"]
    counts = Counter(level1.sample(rng).blocks[0].num_global_heads for _ in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(850 < c < 1150 for c in counts.values()), counts  # 1000 +- 5.5 sigma
    # Level 2 around a mixed block: 81 distinct options for that block, each drawn about 100 times in 8100.
    around = space_preset("demo", 2, distribution=[1, 0, 2, 3])
    counts = Counter(around.sample(rng).blocks[0] for _ in range(8100))
    assert len(counts) == 81
    assert min(counts.values()) > 55 and max(counts.values()) < 150, counts


def test_sampling_by_global_heads_is_uniform_over_the_totals_then_over_their_splits():
    rng = random.Random(4)
    space = FIXED["demo-L2"]  # 4 blocks of 0..3 global heads: totals 0..12
    draws = [space.sample_by_global_heads(rng) for _ in range(6500)]
    assert all(space.contains(a) for a in draws)
    totals = Counter(sum(b.num_global_heads for b in a.blocks) for a in draws)
    assert set(totals) == set(range(13)) and all(380 < c < 620 for c in totals.values()), totals  # 500 +- 5.4 sigma
    two = Counter(tuple(b.num_global_heads for b in a.blocks) for a in draws if sum(b.num_global_heads for b in
                                                                                   a.blocks) == 2)
    assert len(two) == 10 and min(two.values()) > 15, two  # the 10 splits of a total of 2, each about 1 in 10
    details = Counter(a.blocks[0].mlp_ratio for a in draws)
    assert set(details) == {2, 4, 6} and min(details.values()) > 1900  # the other genes stay uniform
    around = space_preset("demo", 2, distribution=[1, 0, 2, 3])  # the heads fixed: a uniform draw of the details
    assert {tuple(b.num_global_heads for b in around.sample_by_global_heads(rng).blocks) for _ in range(20)} == \
        {(1, 0, 2, 3)}
    assert space.sample_by_global_heads(random.Random(9)) == space.sample_by_global_heads(random.Random(9))


# -- the preset spaces (SPEC 1.2, 1.3) ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, heads", [("tiny", (0, 1, 2, 3)), ("small", (0, 2, 4, 6)), ("base", (0, 4, 8, 12))])
def test_paper_spaces_have_the_paper_candidates(name, heads):
    full = space_preset(name, 2)
    assert full.family.img_size == 224 and full.family.patch_size == 16 and full.family.depth == 12
    for choices in full.blocks:
        assert tuple(sorted(choices.num_global_heads)) == heads
        assert tuple(sorted(choices.qkv_ratio)) == (0.5, 1, 2)
        assert tuple(sorted(choices.mlp_ratio)) == (2, 4, 6)
        assert tuple(sorted(choices.conv_ratio)) == (1, 2, 4)
        assert tuple(sorted(choices.kernel_size)) == (17, 31, 45)


@pytest.mark.parametrize("name", ["demo", "cifar", "tiny", "small", "base"])
def test_level1_fixes_the_detail_genes(name):
    full, level1 = space_preset(name, 2), space_preset(name, 1)
    for choices, full_choices in zip(level1.blocks, full.blocks):
        assert choices.num_global_heads == full_choices.num_global_heads
        assert (choices.qkv_ratio, choices.mlp_ratio, choices.conv_ratio) == ((1,), (4,), (1,))
        assert choices.kernel_size == (sorted(full_choices.kernel_size)[1],)  # the middle kernel (31 for the paper)
    with pytest.raises(GlitError):
        space_preset(name, 1, distribution=[0] * full.family.depth)
    with pytest.raises(GlitError, match="level"):
        space_preset(name, 3)


def test_a_space_includes_its_levels_but_not_the_other_way():
    full, level1 = space_preset("cifar", 2), space_preset("cifar", 1)
    around = space_preset("cifar", 2, distribution=[3, 2, 1, 0, 1, 3])
    assert full.includes(level1) and full.includes(around) and full.includes(full)
    assert not level1.includes(full) and not around.includes(full) and not level1.includes(around)
    assert level1 == level1_part("cifar", full)
    assert full.includes(around.fix(mlp_ratio=2))
    other_family = dataclasses.replace(level1, family=dataclasses.replace(level1.family, num_classes=100))
    assert not full.includes(other_family)


def test_level2_around_a_distribution_fixes_it():
    arch = FIXED["demo-L1"].sample(random.Random(7))
    around = space_preset("demo", 2, distribution=arch)
    assert [c.num_global_heads for c in around.blocks] == [(b.num_global_heads,) for b in arch.blocks]
    assert around == space_preset("demo", 2, distribution=[b.num_global_heads for b in arch.blocks])
    assert all(FIXED["demo-L2"].contains(around.sample(random.Random(s))) for s in range(10))
    with pytest.raises(GlitError, match="num_global_heads"):
        space_preset("demo", 2, distribution=[1, 1, 1])


# -- genes that do not apply ------------------------------------------------------------------------------------


def test_genes_that_do_not_apply_are_stored_as_none(toy_family):
    arch = Arch(toy_family, (block(3, 1, 4, 2, 5), block(0, 2, 4, 1, 3)))
    all_global, all_local = arch.blocks
    assert (all_global.qkv_ratio, all_global.conv_ratio, all_global.kernel_size) == (1, None, None)
    assert (all_local.qkv_ratio, all_local.conv_ratio, all_local.kernel_size) == (None, 1, 3)
    mixed = Arch(toy_family, (block(1, 0.5, 2, 4, 7), block(2, 2, 6, 1, 3))).blocks[0]
    assert mixed == block(1, 0.5, 2, 4, 7)
    assert json.loads(arch.to_json())["blocks"][0]["kernel_size"] is None


def test_archs_that_differ_only_in_inapplicable_genes_are_equal(toy_family):
    a = Arch(toy_family, (block(3, 1, 4, 2, 5), block(0, 2, 4, 1, 3)))
    b = Arch(toy_family, (block(3, 1, 4, 4, 7), block(0, 0.5, 4, 1, 3)))
    c = Arch(toy_family, (block(3, 1, 4, None, None), block(0, None, 4, 1, 3)))
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert a.to_json() == b.to_json()
    assert a != Arch(toy_family, (block(3, 1, 4, 2, 5), block(0, 2, 4, 1, 5)))  # K applies there


# -- sizes ------------------------------------------------------------------------------------------------------


# Distinct blocks for H = 3 and three candidates per gene: G = 0 -> mlp x conv x kernel, G = 1, 2 -> qkv x mlp x
# conv x kernel, G = 3 -> qkv x mlp.
OPTIONS_PER_G = {0: 1 * 3 * 3 * 3, 1: 3 * 3 * 3 * 3, 2: 3 * 3 * 3 * 3, 3: 3 * 3}


def test_size_of_the_tiny_spaces():
    full = space_preset("tiny", 2)
    assert sum(OPTIONS_PER_G.values()) == 198
    assert full.size() == 198**12
    assert full.num_gene_combinations() == (4 * 3**4) ** 12
    assert 1.3e30 < full.num_gene_combinations() < 1.4e30  # SPEC 1.2: about 1.3e30
    assert space_preset("tiny", 1).size() == 4**12
    distribution = [b.num_global_heads for b in arch_preset("glit-tiny-released").blocks]
    around = space_preset("tiny", 2, distribution=distribution)
    expected = 1
    for g in distribution:
        expected *= OPTIONS_PER_G[g]
    assert around.size() == expected


def test_size_counts_distinct_architectures_by_enumeration(toy_family):
    family = dataclasses.replace(toy_family, depth=1)
    candidates = {"num_global_heads": (0, 1, 2, 3), "qkv_ratio": (0.5, 1, 2), "mlp_ratio": (2, 4, 6),
                  "conv_ratio": (1, 2, 4), "kernel_size": (3, 5, 7)}
    space = SearchSpace.uniform(family, **candidates)
    distinct = {Arch(family, (block(*combo),)) for combo in itertools.product(*candidates.values())}
    assert len(distinct) == space.size() == 198
    assert space.num_gene_combinations() == 4 * 3**4


# -- fix and check ----------------------------------------------------------------------------------------------


def test_fix(toy_space):
    fixed = toy_space.fix(mlp_ratio=4, num_global_heads=[0, 3])
    assert fixed.size() == (3 * 3) * 3  # G=0: conv x kernel; G=3: qkv
    rng = random.Random(0)
    for _ in range(20):
        arch = fixed.sample(rng)
        assert [b.num_global_heads for b in arch.blocks] == [0, 3]
        assert all(b.mlp_ratio == 4 for b in arch.blocks)
        assert toy_space.contains(arch)


@pytest.mark.parametrize("genes, message", [
    ({"mlp_ratio": 3}, "mlp_ratio"),
    ({"kernel_size": [3, 9]}, "kernel_size"),
    ({"kernel_size": [3, 5, 7]}, "kernel_size"),
    ({"num_local_heads": 1}, "num_local_heads"),
])
def test_fix_rejects_values_outside_the_candidates(toy_space, genes, message):
    with pytest.raises(GlitError, match=message):
        toy_space.fix(**genes)


def test_check_names_the_first_block_and_gene_outside_the_space():
    space = FIXED["demo-L1"]
    arch = space.sample(random.Random(3))
    outside = _replace_block(_replace_block(arch, 2, mlp_ratio=6), 3, mlp_ratio=2)
    assert not space.contains(outside)
    with pytest.raises(GlitError, match=r"block 2: mlp_ratio=6"):
        space.check(outside)
    local = Arch(arch.family, tuple(block(0, None, 4, 1, 5) for _ in arch.blocks))
    assert space.contains(local)
    with pytest.raises(GlitError, match=r"block 1: kernel_size=9"):
        space.check(_replace_block(local, 1, kernel_size=9))
    space.check(arch)  # inside: no error


def test_check_rejects_another_family():
    arch = FIXED["cifar-L1"].sample(random.Random(0))
    assert not FIXED["demo-L1"].contains(arch)
    with pytest.raises(GlitError, match="family"):
        FIXED["demo-L1"].check(arch)


# -- JSON errors and files ----------------------------------------------------------------------------------------


def _toy_dict(toy_family) -> dict:
    return Arch(toy_family, (block(1, 1, 4, 2, 5), block(0, None, 2, 1, 3))).to_dict()


def _unknown_gene(d):
    d["blocks"][1]["num_local_heads"] = 1


def _too_many_heads(d):
    d["blocks"][0]["num_global_heads"] = 7


def _too_few_blocks(d):
    d["blocks"].pop()


def _missing_gene(d):
    del d["blocks"][0]["mlp_ratio"]


def _fractional_channels(d):
    d["blocks"][0]["qkv_ratio"] = 0.3


def _bool_heads(d):
    d["blocks"][0]["num_global_heads"] = True


def _unknown_family_key(d):
    d["family"]["image_size"] = 16


@pytest.mark.parametrize("edit, message", [
    (_unknown_gene, "block 1: unknown key 'num_local_heads'"),
    (_too_many_heads, "num_global_heads must be an integer in 0..3, got 7"),
    (_too_few_blocks, "1 blocks given, but the family's depth is 2"),
    (_missing_gene, "block 0: missing key 'mlp_ratio'"),
    (_fractional_channels, "qkv_ratio=0.3"),
    (_bool_heads, "num_global_heads"),
    (_unknown_family_key, "unknown key 'image_size'"),
])
def test_from_json_errors_name_the_problem(toy_family, edit, message):
    data = _toy_dict(toy_family)
    Arch.from_json(json.dumps(data))  # the unedited dict is valid
    edit(data)
    with pytest.raises(GlitError) as info:
        Arch.from_json(json.dumps(data))
    assert message in str(info.value)


def test_from_json_rejects_malformed_json():
    with pytest.raises(GlitError, match="malformed JSON"):
        Arch.from_json('{"family": {"img_size": 16,')


@pytest.mark.parametrize("text", ["[1, 2]", "null"])
def test_from_json_rejects_json_that_is_not_an_object(text):
    with pytest.raises(GlitError, match="expected a JSON object"):
        Arch.from_json(text)


def test_from_json_reads_files(toy_family, tmp_path):
    arch = Arch.from_dict(_toy_dict(toy_family))
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    assert Arch.from_json(path) == arch
    assert Arch.from_json(str(path)) == arch
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(GlitError, match="bad.json: malformed JSON"):
        Arch.from_json(bad)
    with pytest.raises(GlitError, match="missing.json"):
        Arch.from_json(tmp_path / "missing.json")


def test_family_validation():
    with pytest.raises(GlitError, match="patch_size"):
        Family(img_size=10, patch_size=4, embed_dim=24, num_heads=3, depth=2, num_classes=5)
    with pytest.raises(GlitError, match="num_heads"):
        Family(img_size=16, patch_size=4, embed_dim=25, num_heads=3, depth=2, num_classes=5)
    with pytest.raises(GlitError, match="depth"):
        Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=0, num_classes=5)


# -- the authors' level-2 space (pins) --------------------------------------------------------------------------------


def test_the_paper_space_holds_exactly_the_released_glit_tiny_choices():
    released = arch_preset("glit-tiny-released")
    around = space_preset("tiny", 2, distribution=released, level2_space="paper")
    assert around.contains(released)
    qkv, mlp, conv, kernel = (0.5, 1, 2), (2, 4, 6), (1, 2, 4), (17, 31, 45)
    for i, genes in enumerate(released.blocks):
        g = genes.num_global_heads
        if g == 3:  # all global: qkv_ratio x mlp_ratio
            allowed = [block(3, q, m, None, None) for q in qkv for m in mlp]
        elif g == 0:  # all local: kernel_size x conv_ratio, mlp_ratio 4
            allowed = [block(0, None, 4, e, k) for k in kernel for e in conv]
        else:  # mixed: conv_ratio x mlp_ratio, qkv_ratio 1, kernel 31
            allowed = [block(g, 1, m, e, 31) for e in conv for m in mlp]
        assert sorted(around.block_options(i), key=repr) == sorted(allowed, key=repr), i
    assert around.size() == 9 ** 12
    whole = space_preset("tiny", 2, level2_space="paper")
    assert [len(whole.block_options(i)) for i in range(12)] == [36] * 12  # 9 for each of the 4 numbers of heads
    assert whole.contains(released) and whole.includes(around)


def test_the_paper_space_rejects_what_its_pins_forbid_and_round_trips():
    full = space_preset("cifar", 2)
    paper = space_preset("cifar", 2, level2_space="paper")
    assert full.includes(paper) and not paper.includes(full)
    local = _replace_block(level1_part("cifar", full).fix(num_global_heads=0).sample(random.Random(0)), 2,
                           mlp_ratio=6)
    assert full.contains(local)
    with pytest.raises(GlitError, match="block 2: outside the space, whose local blocks have mlp_ratio=4"):
        paper.check(local)
    assert SearchSpace.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper
    assert "pins" not in full.to_dict()  # space.json files of the full space are unchanged
    assert level1_part("cifar", paper).size() == level1_part("cifar", full).size()  # level 1 is the same
    with pytest.raises(GlitError, match="search.level2_space"):
        space_preset("cifar", 2, level2_space="authors")
