"""The cost model: the reference figures of SPEC 2, and params and MACs checked against the built model."""

import itertools
import random
import subprocess
import sys

import pytest
import torch

import glit
from glit import Arch, BlockGenes, GlitError, SearchSpace
from glit.cost import extremes
from glit.genes import LOCAL_OPS
from glit.presets import arch_preset, space_preset
from helpers import measured_macs


def _sampled_archs() -> list[Arch]:
    """Five seeded samples from each of the level-1 and full level-2 spaces of demo and cifar, plus a level-2 space
    around a sampled distribution, the paper's level-2 space and a space with every local operator; and the two
    reference architectures."""
    archs = []
    for name, level in itertools.product(("demo", "cifar"), (1, 2)):
        rng = random.Random(f"{name}-{level}")
        space = space_preset(name, level)
        archs += [space.sample(rng) for _ in range(5)]
        if level == 1:
            around = space_preset(name, 2, distribution=space.sample(rng))
            archs += [around.sample(rng) for _ in range(2)]
        else:
            paper = space_preset(name, 2, level2_space="paper")
            archs += [paper.sample(rng) for _ in range(2)]
            every_op = space_preset(name, 2, local_ops=tuple(LOCAL_OPS))
            archs += [every_op.sample(rng) for _ in range(4)]
    return archs + [arch_preset("glit-tiny-released"), arch_preset("deit-tiny")]


ARCHS = _sampled_archs()


def _ids(arch: Arch) -> str:
    return f"{arch.family.img_size}px-G" + "".join(str(b.num_global_heads) for b in arch.blocks)


def _params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


# -- the reference figures (SPEC 2) -------------------------------------------------------------------------------


def test_reference_figures_glit_tiny_released():
    arch = arch_preset("glit-tiny-released")
    exact, authors = glit.cost(arch), glit.cost(arch, "glit")
    assert exact.params == authors.params == 7_264_456
    assert exact.macs == pytest.approx(1472.9e6, rel=1e-3)
    assert authors.macs == pytest.approx(1332.5e6, rel=1e-3)
    assert exact.convention == "exact" and authors.convention == "glit"


def test_reference_figures_deit_tiny():
    arch = arch_preset("deit-tiny")
    assert glit.cost(arch).params == 5_717_416
    assert glit.cost(arch).macs == pytest.approx(1253.7e6, rel=1e-3)
    assert glit.cost(arch, "glit").macs == pytest.approx(1253.7e6, rel=1e-3)


def test_unknown_convention_is_an_error():
    with pytest.raises(GlitError, match="convention"):
        glit.cost(arch_preset("deit-tiny"), "timm")


# -- the cost model against the built model -----------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS, ids=_ids)
def test_params_and_macs_match_the_built_model(arch):
    assert len(ARCHS) >= 20
    model = glit.build_model(arch).eval()
    c = glit.cost(arch)
    assert c.params == _params(model)
    measured = measured_macs(model, arch.family)
    assert c.macs == measured["total"]

    # The breakdown: stem, each block's parts, head; each part against its own module.
    assert c.stem.params == _params(model.patch_embed) + model.cls_token.numel() + model.pos_embed.numel()
    assert c.stem.macs == measured["patch_embed.proj"]
    assert c.head.params == _params(model.norm) + _params(model.head)
    assert c.head.macs == measured["head"]
    for i, (block_cost, block, genes) in enumerate(zip(c.blocks, model.blocks, arch.blocks)):
        for part in ("attn", "local", "mlp"):
            name = LOCAL_OPS[genes.local_op].layer if part == "local" and genes.local_op else part
            assert getattr(block_cost, part).params == _params(getattr(block, name, None)), (i, part)
            assert getattr(block_cost, part).macs == measured.get(f"blocks.{i}.{name}", 0), (i, part)
        assert block_cost.norms.params == _params(block.norm1) + _params(block.norm2)
        assert block_cost.total.macs == measured[f"blocks.{i}"]


@pytest.mark.parametrize("arch", ARCHS, ids=_ids)
@pytest.mark.parametrize("convention", ["exact", "glit"])
def test_breakdown_sums_to_the_total(arch, convention):
    c = glit.cost(arch, convention)
    total = c.stem + c.head
    for block in c.blocks:
        total = total + block.total
        assert block.total.params == block.attn.params + block.local.params + block.mlp.params + block.norms.params
        assert block.total.macs == block.attn.macs + block.local.macs + block.mlp.macs + block.norms.macs
    assert (total.params, total.macs) == (c.params, c.macs)
    assert len(c.blocks) == arch.family.depth


@pytest.mark.parametrize("arch", ARCHS, ids=_ids)
def test_glit_convention_counts_the_first_pointwise_conv_once(arch):
    fam = arch.family
    undercount = 0
    for genes in arch.blocks:
        c_l = fam.embed_dim - genes.num_global_heads * fam.head_channels
        if genes.local_op in ("conv1d", "conv2d"):  # the modules with a GLU; window attention has none
            undercount += fam.num_tokens * c_l * int(genes.conv_ratio * c_l)  # half of pw1's 2 E C_l outputs
    assert glit.cost(arch).macs - glit.cost(arch, "glit").macs == undercount
    assert glit.cost(arch).params == glit.cost(arch, "glit").params


# -- extremes -----------------------------------------------------------------------------------------------------


SPACES = {f"{name}-L{level}": space_preset(name, level)
          for name in ("demo", "cifar", "tiny") for level in (1, 2)}
SPACES["demo-L2-around"] = space_preset("demo", 2, distribution=[0, 3, 1, 2])
SPACES["cifar-paper"] = space_preset("cifar", 2, level2_space="paper")


@pytest.mark.parametrize("key", ["macs", "params"])
@pytest.mark.parametrize("name", sorted(SPACES))
def test_extremes_bound_random_samples(name, key):
    space = SPACES[name]
    smallest, largest = extremes(space, key=key)
    assert space.contains(smallest) and space.contains(largest)
    lo, hi = getattr(glit.cost(smallest), key), getattr(glit.cost(largest), key)
    assert lo < hi
    rng = random.Random(name)
    for _ in range(200):
        value = getattr(glit.cost(space.sample(rng)), key)
        assert lo <= value <= hi


def test_extremes_are_exact_by_enumeration(toy_family):
    space = SearchSpace.uniform(toy_family, num_global_heads=(0, 1, 2, 3), qkv_ratio=(0.5, 2),
                                mlp_ratio=(2, 6), conv_ratio=(1, 4), kernel_size=(3, 7))
    names = ("num_global_heads", "qkv_ratio", "mlp_ratio", "conv_ratio", "kernel_size")
    options = [BlockGenes(**dict(zip(names, combo)))
               for combo in itertools.product((0, 1, 2, 3), (0.5, 2), (2, 6), (1, 4), (3, 7))]
    archs = list({Arch(space.family, blocks) for blocks in itertools.product(options, options)})
    assert len(archs) == space.size() == 44**2
    costs = [glit.cost(a) for a in archs]
    for key in ("macs", "params"):
        smallest, largest = extremes(space, key=key)
        values = [getattr(c, key) for c in costs]
        assert getattr(glit.cost(smallest), key) == min(values)
        assert getattr(glit.cost(largest), key) == max(values)
    paper = space.pin([("local", "mlp_ratio", 2), ("mixed", "qkv_ratio", 0.5), ("mixed", "kernel_size", 3)])
    held = [a for a in archs if paper.contains(a)]
    assert len(held) == paper.size()
    for key in ("macs", "params"):  # exact with pins too
        smallest, largest = extremes(paper, key=key)
        values = [getattr(glit.cost(a), key) for a in held]
        assert (getattr(glit.cost(smallest), key), getattr(glit.cost(largest), key)) == (min(values), max(values))
    # The largest by MACs has every gene at its largest value in the all-local or the mixed blocks.
    assert extremes(space)[1].blocks[0] in [
        BlockGenes(num_global_heads=g, qkv_ratio=2, mlp_ratio=6, conv_ratio=4, kernel_size=7).canonical(3)
        for g in (0, 1, 2)]
    with pytest.raises(GlitError, match="key"):
        extremes(space, key="latency")


# -- no torch in the search-side modules ----------------------------------------------------------------------------


def test_space_cost_and_presets_import_without_torch():
    code = "import sys; import glit, glit.space, glit.cost, glit.presets; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
