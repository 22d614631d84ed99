"""The network: supernet paths equal extracted subnets, gradients stay on the path, and the layout is timm's."""

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import glit
from glit import Arch, BlockGenes, Family, GlitError, SearchSpace
from glit.cost import extremes
from glit.genes import GENE_NAMES, LOCAL_OPS
from glit.presets import arch_preset, space_preset
from glit.space import DETAIL_GENES, KINDS, block_kind
from helpers import block

TOY = Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=2, num_classes=5)
TOY_SPACE = SearchSpace.uniform(TOY, num_global_heads=(0, 1, 2, 3), qkv_ratio=(0.5, 1, 2), mlp_ratio=(2, 4, 6),
                                conv_ratio=(1, 2, 4), kernel_size=(3, 5, 7))


TOY_PINS = (("local", "mlp_ratio", 4), ("mixed", "qkv_ratio", 1), ("mixed", "kernel_size", 5))


def _space(name: str) -> SearchSpace:
    if name.endswith("-ops"):  # every local operator
        full = TOY_SPACE if name == "toy-ops" else space_preset(name.split("-")[0], 2)
        return SearchSpace(full.family, tuple(dataclasses.replace(c, local_op=tuple(LOCAL_OPS)) for c in full.blocks))
    if name == "toy-L1":
        return TOY_SPACE.fix(qkv_ratio=1, mlp_ratio=4, conv_ratio=1, kernel_size=5)
    if name == "toy-L2":
        return TOY_SPACE
    if name.endswith("-paper"):  # the authors' level-2 space (pins)
        return space_preset(name.split("-")[0], 2, level2_space="paper")
    preset, level = name.split("-")[:2]
    if name.endswith("-around"):
        distribution = space_preset(preset, 1).sample(random.Random(name))
        return space_preset(preset, 2, distribution=distribution)
    return space_preset(preset, int(level[1]))


@torch.no_grad()
def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every parameter and fill BatchNorm statistics with random values, so that a weight or statistic that
    is not copied (or copied from the wrong place) changes the output. Fresh models have constant biases and norms."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen, dtype=m.running_mean.dtype))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen, dtype=m.running_var.dtype))
            m.num_batches_tracked.fill_(7)
    return model


def _supernet(space: SearchSpace, seed: int = 0, **kwargs) -> glit.Supernet:
    gen = torch.Generator().manual_seed(seed)
    return _randomise(glit.Supernet(space, generator=gen, **kwargs).double(), seed)


def _input(family: Family, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, family.in_chans, family.img_size, family.img_size, generator=gen, dtype=torch.float64)


# -- supernet path == extracted subnet ----------------------------------------------------------------------------


EQUIVALENCE = {"demo-L1": 4, "demo-L2": 4, "demo-L2-around": 3, "cifar-L1": 3, "cifar-L2": 3, "toy-L1": 2,
               "toy-L2": 6, "demo-paper": 6, "demo-ops": 6, "toy-ops": 6}


def _equivalence_archs(name: str) -> tuple[SearchSpace, list[Arch]]:
    """The space ``name`` and the architectures that the equivalence test draws from it (seeded by the name)."""
    space = _space(name)
    rng = random.Random(name)
    return space, [space.sample(rng) for _ in range(EQUIVALENCE[name])]


def _kinds_and_values(space: SearchSpace, blocks) -> set[tuple[str, object]]:
    """``("kind", k)`` for each kind of block (all-global, mixed, all-local) among ``blocks``, and ``(gene, value)``
    for each value that a detail gene takes in them (a gene that does not apply, None, is no value)."""
    found = set()
    for genes in blocks:
        found.add(("kind", block_kind(genes.num_global_heads, space.family.num_heads)))
        found |= {(gene, getattr(genes, gene)) for gene in DETAIL_GENES if getattr(genes, gene) is not None}
    return found


def test_equivalence_covers_enough_architectures():
    """The architectures that the equivalence test draws from each space use every kind of block that the space
    allows and every candidate of every detail gene that it allows (pins included), so that each slicing rule (a
    narrower qkv, FFN or conv, a smaller kernel, an absent global or local part) meets an extracted subnet; across the
    spaces, all three kinds of block occur and every detail gene varies, with and without pins. Guards against a
    sampler that never draws some candidate or kind (G=0, G=H, a pinned gene's free values), and against seeds or
    counts that leave a slicing rule unchecked."""
    everywhere = set()
    for name in sorted(EQUIVALENCE):
        space, archs = _equivalence_archs(name)
        allowed = _kinds_and_values(space, (o for i in range(space.family.depth) for o in space.block_options(i)))
        drawn = _kinds_and_values(space, (genes for arch in archs for genes in arch.blocks))
        assert drawn == allowed, f"{name}: never drawn: {sorted(allowed - drawn, key=str)}"
        assert len(set(archs)) == len(archs) >= 2, name
        everywhere |= drawn
    assert {value for what, value in everywhere if what == "kind"} == set(KINDS)
    for gene in DETAIL_GENES:
        assert len({value for what, value in everywhere if what == gene}) >= 2, gene
    assert any(_space(name).pins for name in EQUIVALENCE)


@pytest.mark.parametrize("name", sorted(EQUIVALENCE))
def test_supernet_path_equals_extracted_subnet(name):
    space, archs = _equivalence_archs(name)
    supernet = _supernet(space).eval()
    x = _input(space.family)
    outputs = []
    for arch in archs:
        subnet = supernet.extract(arch)
        assert not subnet.training
        assert sum(p.numel() for p in subnet.parameters()) == glit.cost(arch).params
        with torch.no_grad():
            expected, got = supernet(x, arch), subnet(x)
        assert got.dtype == torch.float64 and got.shape == (2, space.family.num_classes)
        assert (expected - got).abs().max().item() <= 1e-10
        outputs.append(expected)
    assert not torch.equal(outputs[0], outputs[1])  # the arch argument matters


def test_glit_tiny_released_in_the_tiny_supernet():
    arch = arch_preset("glit-tiny-released")
    supernet = _supernet(space_preset("tiny", 2)).eval()
    x = _input(arch.family, batch=1)
    with torch.no_grad():
        expected, got = supernet(x, arch), supernet.extract(arch)(x)
    assert got.shape == (1, 1000)
    assert (expected - got).abs().max().item() <= 1e-10


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if ".bn.running" in k or "num_batches" in k}


@pytest.mark.parametrize("drop_path", [0.0, 0.5])
def test_train_mode_equivalence_and_batchnorm_updates(drop_path):
    space = _space("demo-L2")
    supernet = _supernet(space, drop_path=drop_path).train()
    arch = Arch(space.family, (block(1, 2, 4, 2, 5), block(0, None, 6, 4, 9),
                               block(3, 0.5, 2, None, None), block(2, 1, 4, 1, 3)))
    x = _input(space.family, batch=3)
    before = _bn_state(supernet)
    subnet = supernet.extract(arch)
    assert subnet.training
    torch.manual_seed(0)
    got = subnet(x)
    torch.manual_seed(0)
    expected = supernet(x, arch)
    assert (expected - got).abs().max().item() <= 1e-10

    # The supernet path updated exactly the statistics it used, as the subnet updated its own.
    after = supernet.extract(arch).state_dict()
    for key, value in subnet.state_dict().items():
        if ".bn." in key:
            assert torch.allclose(after[key], value, rtol=0, atol=1e-12), key
    changed = sum(int((supernet.state_dict()[k] != v).sum()) for k, v in before.items() if "running" in k)
    used = sum(v.numel() for k, v in subnet.state_dict().items() if ".bn.running" in k)
    assert changed == used > 0
    if drop_path:
        torch.manual_seed(1)
        assert not torch.allclose(supernet(x, arch), expected)  # stochastic depth is on


def test_extract_copies_the_weights():
    space = _space("demo-L2")
    supernet = _supernet(space).eval()
    arch = space.sample(random.Random(5))
    snapshot = {k: v.clone() for k, v in supernet.state_dict().items()}
    subnet = supernet.extract(arch)
    with torch.no_grad():
        for p in subnet.parameters():
            p.mul_(2).add_(1)
    subnet.train()
    subnet(_input(space.family))  # updates the subnet's BatchNorm statistics
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    # A standalone model's own extract copies too (its slices are whole tensors).
    model = _supernet(SearchSpace.single(arch))
    copy = model.extract(arch)
    with torch.no_grad():
        copy.head.weight.zero_()
    assert model.head.weight.abs().sum() > 0


@pytest.mark.parametrize("name", ["toy-L2", "demo-L2", "demo-ops"])
def test_per_heads_local_weights_equal_their_extracted_subnets_and_share_nothing_across_head_counts(name):
    """supernet.local_weights=per_heads: one local module per number of local heads in each block. Every path still
    equals its extracted subnet (whose blocks keep timm-style names), and a path's gradient reaches only the module
    of its own number of local heads."""
    space, archs = _equivalence_archs(name)
    supernet = _supernet(space, local_weights="per_heads").eval()
    names = {n.split(".")[2] for n, _ in supernet.named_parameters() if n.startswith("blocks.0.local")}
    assert names == {f"local_{L}heads" for L in (1, 2, 3)} if name != "demo-ops" else len(names) == 9
    x = _input(space.family)
    for arch in archs:
        subnet = supernet.extract(arch)
        assert sum(p.numel() for p in subnet.parameters()) == glit.cost(arch).params
        assert not any("heads" in n for n, _ in subnet.named_parameters())
        with torch.no_grad():
            assert (supernet(x, arch) - subnet(x)).abs().max().item() <= 1e-10
    arch = next(a for a in archs if 0 < a.blocks[0].num_global_heads < 3)
    F.cross_entropy(supernet.train()(x, arch), torch.zeros(2, dtype=torch.long)).backward()
    own = f"{LOCAL_OPS[arch.blocks[0].local_op].layer}_{3 - arch.blocks[0].num_global_heads}heads"
    for n, p in supernet.blocks[0].named_parameters():
        if n.startswith("local_"):
            assert (p.grad is not None and p.grad.abs().sum() > 0) == n.startswith(own + "."), n
    shared = _supernet(space).eval()
    assert sum(p.numel() for p in supernet.parameters()) > sum(p.numel() for p in shared.parameters())


def test_a_per_heads_supernet_warm_starts_another_exactly():
    from glit.recipes.train_supernet import inherit_paths

    source = _supernet(TOY_SPACE, seed=1, local_weights="per_heads").eval()
    target = _supernet(TOY_SPACE, seed=2, local_weights="per_heads").eval()
    inherit_paths(target, source, "whole.pt")
    for (n, a), b in zip(target.state_dict().items(), source.state_dict().values()):
        assert torch.equal(a, b), n


@pytest.mark.parametrize("around", [False, True])
def test_warm_start_writes_the_level1_paths_into_a_level2_supernet(around):
    """Over the whole space every level-1 path (all 16 of the toy) gives the level-1 supernet's output; around a
    distribution, that distribution's path does."""
    from glit.recipes.train_supernet import inherit_paths

    level1 = _supernet(_space("toy-L1"), seed=1).eval()
    paths = [level1.space.fix(num_global_heads=[g0, g1]).sample(random.Random(0)) for g0 in range(4) for g1 in range(4)]
    space = TOY_SPACE.fix(num_global_heads=[2, 0]) if around else TOY_SPACE
    level2 = _supernet(space, seed=2).eval()
    inherit_paths(level2, level1, "level1.pt")
    x = _input(TOY)
    with torch.no_grad():
        for arch in paths:
            if space.contains(arch):
                assert (level2(x, arch) - level1(x, arch)).abs().max().item() <= 1e-10, arch
    assert sum(space.contains(a) for a in paths) == (1 if around else 16)
    other = _supernet(TOY_SPACE.fix(kernel_size=7), seed=3)
    with pytest.raises(GlitError, match="other.pt: shares no path with this supernet .block 0: no common kernel_size"):
        inherit_paths(level1, other, "other.pt")


@pytest.mark.parametrize("around", [False, True, "paper"])
def test_warm_start_from_a_whole_space_supernet_copies_every_weight(around):
    """A supernet over the whole space seeds one over the whole space, around a distribution, or over the authors'
    pinned space, exactly: every path (BatchNorm statistics included) gives the source's output."""
    from glit.recipes.train_supernet import inherit_paths

    source = _supernet(TOY_SPACE, seed=1)
    with torch.no_grad():  # distinct BatchNorm statistics, so that copying them is checked too
        for block in source.blocks:
            block.local.bn.running_mean.uniform_(-1, 1)
            block.local.bn.running_var.uniform_(0.5, 2)
    source.eval()
    space = TOY_SPACE.fix(num_global_heads=[2, 0]) if around is True else TOY_SPACE.pin(TOY_PINS) if around else \
        TOY_SPACE
    target = _supernet(space, seed=2).eval()
    inherit_paths(target, source, "whole.pt")
    if around is not True:  # the pinned space's paths still reach every weight
        for (name, a), b in zip(target.state_dict().items(), source.state_dict().values()):
            assert torch.equal(a, b), name
    x = _input(TOY)
    rng = random.Random(0)
    with torch.no_grad():
        for _ in range(12):
            arch = space.sample(rng)
            assert (target(x, arch) - source(x, arch)).abs().max().item() <= 1e-10, arch


# -- what is shared: a weight means the same thing in every path ----------------------------------------------------


def test_a_token_channel_meets_the_same_weights_whatever_the_split():
    # The global part owns the first C_g token channels, the local part the last C_l (toy: 8 channels per head).
    supernet = _supernet(TOY_SPACE)
    g0, g1, g3 = (Arch(TOY, (block(g, 2, 4, 1, 5),) * 2) for g in (0, 1, 3))
    local0, local1 = supernet.extract(g0).blocks[0].local, supernet.extract(g1).blocks[0].local
    assert torch.equal(local1.pw2.bias, local0.pw2.bias[8:])
    assert torch.equal(local1.pw2.weight, local0.pw2.weight[8:, :16])
    assert torch.equal(supernet.extract(g1).blocks[0].attn.proj.bias, supernet.extract(g3).blocks[0].attn.proj.bias[:8])


def test_a_smaller_kernel_is_the_centre_of_the_larger():
    supernet = _supernet(TOY_SPACE)
    k7, k3 = (Arch(TOY, (block(0, None, 4, 2, k),) * 2) for k in (7, 3))
    assert torch.equal(supernet.extract(k3).blocks[0].local.dw.weight,
                       supernet.extract(k7).blocks[0].local.dw.weight[:, :, 2:5])


# -- gradients stay on the path ---------------------------------------------------------------------------------


def _backward(model: nn.Module, arch: Arch | None, seed: int) -> None:
    """One backward pass of a random linear loss on the logits and on every token of the last block's output.

    The tokens matter: through the class token alone, a local last block would leave exact zero gradients where its
    kernel taps reach the padding, although those weights are on the path."""
    fam = (arch or model.arch).family
    tokens = []
    hook = model.blocks[-1].register_forward_hook(lambda module, args, out: tokens.append(out))
    logits = model(_input(fam, seed=seed), arch) if arch is not None else model(_input(fam, seed=seed))
    hook.remove()
    gen = torch.Generator().manual_seed(seed + 1000)
    loss = (logits * torch.randn(logits.shape, generator=gen, dtype=logits.dtype)).sum()
    loss = loss + (tokens[0] * torch.randn(tokens[0].shape, generator=gen, dtype=logits.dtype)).sum()
    loss.backward()


def _nonzero_grads(model: nn.Module, arch: Arch | None, seeds=(1, 2)) -> dict[str, torch.Tensor]:
    """Where the gradient is nonzero in any of the passes; grads accumulate over the passes."""
    model.zero_grad(set_to_none=True)
    masks = {name: torch.zeros(p.shape, dtype=torch.bool) for name, p in model.named_parameters()}
    previous = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for seed in seeds:
        _backward(model, arch, seed)
        for name, p in model.named_parameters():
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            masks[name] |= grad != previous[name]
            previous[name] = grad.clone()
    return masks


def _key_biases(subnet: nn.Module) -> torch.Tensor:
    """The values of the key biases of a standalone model (timm layout: qkv rows are q | k | v).

    Their gradient is zero in exact arithmetic: a bias on the keys shifts every logit of a query equally, and softmax
    ignores that. In float64 it comes out as rounding noise that may or may not be exactly 0, so the tests find these
    elements by value (every weight is randomised, so values are unique) rather than by gradient."""
    biases = [b.attn.qkv.bias.detach().chunk(3)[1] for b in subnet.blocks if getattr(b, "attn", None) is not None]
    return torch.cat(biases) if biases else torch.zeros(0, dtype=torch.float64)


def _on_path(supernet: glit.Supernet, arch: Arch) -> dict[str, torch.Tensor]:
    """The supernet elements that ``arch`` uses, found from gradients alone (plus the key biases, by value)."""
    masks = _nonzero_grads(supernet, arch)
    key_biases = _key_biases(supernet.extract(arch))
    for name, p in supernet.named_parameters():
        if name.endswith("attn.qkv.bias"):
            dead = torch.isin(p.detach(), key_biases)
            assert p.grad is None and not dead.any() or (p.grad[dead].abs() < 1e-12).all(), name
            masks[name] |= dead
    return masks


@pytest.mark.parametrize("name, seed", [("demo-L2", 0), ("demo-L2", 1), ("demo-L1", 2), ("toy-L2", 3)])
def test_gradients_stay_on_the_path(name, seed):
    space = _space(name)
    supernet = _supernet(space).eval()  # eval: in train mode BatchNorm makes the depthwise bias's gradient zero
    arch = space.sample(random.Random(seed))
    inside = _on_path(supernet, arch)
    assert sum(int(m.sum()) for m in inside.values()) == glit.cost(arch).params

    # The elements on the path are exactly the extracted subnet's weights, with the same gradients.
    subnet = supernet.extract(arch)
    _nonzero_grads(subnet, None)
    sub_params = dict(subnet.named_parameters())
    for key, p in supernet.named_parameters():
        mask = inside[key]
        if key not in sub_params:
            assert not mask.any() and (p.grad is None or not p.grad.any()), key
            continue
        sub = sub_params[key]
        assert int(mask.sum()) == sub.numel(), key
        assert not p.grad[~mask].any(), key  # exactly zero off the path
        assert torch.equal(p.detach()[mask].sort().values, sub.detach().flatten().sort().values), key
        got, want = p.grad[mask].sort().values, sub.grad.flatten().sort().values
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12), key

    # In train mode too, nothing off the path gets a gradient.
    supernet.train()
    for key, mask in _nonzero_grads(supernet, arch).items():
        assert not (mask & ~inside[key]).any(), key


def _largest(space: SearchSpace) -> Arch:
    return Arch(space.family, tuple(BlockGenes(**{g: max(getattr(c, g)) for g in GENE_NAMES}) for c in space.blocks))


def test_largest_arch_of_a_level2_space_covers_every_weight():
    space = space_preset("demo", 2, distribution=[0, 1, 2, 3])
    largest = _largest(space)
    assert largest == extremes(space)[1]
    supernet = _supernet(space).eval()
    for key, mask in _on_path(supernet, largest).items():
        assert mask.all(), (key, int((~mask).sum()))


@pytest.mark.parametrize("name", ["demo-L1", "demo-L2"])
def test_all_global_and_all_local_paths_cover_every_weight(name):
    space = _space(name)
    supernet = _supernet(space).eval()
    fam, top = space.family, space.blocks[0]
    qkv, mlp, conv, kernel = (max(getattr(top, g)) for g in ("qkv_ratio", "mlp_ratio", "conv_ratio", "kernel_size"))
    all_global = Arch(fam, (block(fam.num_heads, qkv, mlp, None, None),) * fam.depth)
    all_local = Arch(fam, (block(0, None, mlp, conv, kernel),) * fam.depth)
    global_mask, local_mask = _on_path(supernet, all_global), _on_path(supernet, all_local)
    for key in global_mask:
        assert (global_mask[key] | local_mask[key]).all(), key
        if ".local." in key:
            assert not global_mask[key].any(), key
        if ".attn." in key:
            assert not local_mask[key].any(), key


# -- structure ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("g, absent", [(3, ".local."), (0, ".attn.")])
def test_no_empty_modules(g, absent):
    space = space_preset("demo", 2, distribution=[g] * 4)
    supernet = _supernet(space).eval()
    keys = supernet.state_dict().keys()
    assert not any(absent in k for k in keys)
    assert all(v.numel() > 0 for v in supernet.state_dict().values())
    arch = space.sample(random.Random(0))
    with torch.no_grad():
        assert torch.isfinite(supernet(_input(space.family), arch)).all()
    assert not any(absent in k for k in supernet.extract(arch).state_dict())


def test_no_empty_tensors_in_mixed_spaces_and_subnets():
    supernet = _supernet(_space("demo-L2"))
    assert all(v.numel() > 0 for v in supernet.state_dict().values())
    arch = Arch(TOY, (block(3, 1, 4, None, None), block(0, None, 4, 1, 3)))
    keys = glit.build_model(arch).state_dict().keys()
    assert any(k.startswith("blocks.0.attn.") for k in keys) and not any(k.startswith("blocks.0.local.") for k in keys)
    assert any(k.startswith("blocks.1.local.") for k in keys) and not any(k.startswith("blocks.1.attn.") for k in keys)


def test_state_dict_follows_timm_vit():
    model = glit.build_model(arch_preset("deit-tiny"))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {"cls_token": (1, 1, 192), "pos_embed": (1, 197, 192), "patch_embed.proj.weight": (192, 3, 16, 16),
                "patch_embed.proj.bias": (192,), "norm.weight": (192,), "norm.bias": (192,),
                "head.weight": (1000, 192), "head.bias": (1000,)}
    for i in range(12):
        p = f"blocks.{i}."
        expected |= {p + "norm1.weight": (192,), p + "norm1.bias": (192,),
                     p + "attn.qkv.weight": (576, 192), p + "attn.qkv.bias": (576,),
                     p + "attn.proj.weight": (192, 192), p + "attn.proj.bias": (192,),
                     p + "norm2.weight": (192,), p + "norm2.bias": (192,),
                     p + "mlp.fc1.weight": (768, 192), p + "mlp.fc1.bias": (768,),
                     p + "mlp.fc2.weight": (192, 768), p + "mlp.fc2.bias": (192,)}
    assert shapes == expected


def test_initialisation():
    model = glit.build_model(arch_preset("glit-tiny-released"), generator=torch.Generator().manual_seed(0))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(linears) > 30 and len(norms) == 2 * 12 + 1
    assert all(torch.all(m.bias == 0) for m in linears)
    assert all(m.eps == 1e-6 for m in norms)
    for weight in (model.blocks[0].mlp.fc1.weight, model.pos_embed):
        assert weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert abs(weight.mean().item()) < 1e-3
    assert model.cls_token.abs().max() > 0
    again = glit.build_model(arch_preset("glit-tiny-released"), generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("img, patch", [(8, 2), (16, 4), (24, 4), (32, 4), (224, 16)])
def test_token_count_comes_from_image_and_patch_size(img, patch):
    fam = Family(img_size=img, patch_size=patch, embed_dim=24, num_heads=3, depth=1, num_classes=2)
    arch = Arch(fam, (block(1, 1, 2, 1, 3),))
    model = glit.build_model(arch)
    assert model.pos_embed.shape == (1, (img // patch) ** 2 + 1, 24)
    assert model(torch.randn(1, 3, img, img)).shape == (1, 2)


def test_stochastic_depth_rises_linearly():
    supernet = glit.Supernet(_space("cifar-L1"), drop_path=0.1)
    assert [b.drop_path_rate for b in supernet.blocks] == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.1])


def test_forward_without_arch():
    arch = TOY_SPACE.sample(random.Random(0))
    model = glit.build_model(arch)
    assert model.arch == arch
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(GlitError, match="pass one"):
        glit.Supernet(TOY_SPACE)(torch.randn(2, 3, 16, 16))


def test_extract_rejects_an_arch_outside_the_space():
    space = _space("demo-L1")
    supernet = glit.Supernet(space)
    inside = space.sample(random.Random(0))
    outside = Arch(space.family, (block(1, 1, 6, 1, 5),) + inside.blocks[1:])
    with pytest.raises(GlitError, match="block 0: mlp_ratio=6"):
        supernet.extract(outside)
    with pytest.raises(GlitError, match="family"):
        supernet.extract(_space("cifar-L1").sample(random.Random(0)))


def test_forward_rejects_an_arch_outside_the_space():
    space = _space("demo-L1")  # mlp_ratio is fixed at 4
    supernet = glit.Supernet(space)
    arch = Arch(space.family, (block(1, 1, 6, 1, 5),) * space.family.depth)
    assert not space.contains(arch)
    with pytest.raises(GlitError):
        supernet(torch.randn(1, 3, 8, 8), arch)


# -- the maths of SPEC 1.1, written out independently ---------------------------------------------------------------


def _reference_forward(sd: dict[str, torch.Tensor], arch: Arch, x: torch.Tensor, bn_eps: float) -> torch.Tensor:
    """DeiT with global-local blocks, from the state dict alone (timm layout; Conv1d-style local module)."""
    fam = arch.family
    d, hc = fam.embed_dim, fam.head_channels
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=fam.patch_size)
    t = t.flatten(2).transpose(1, 2)  # (B, num_patches, D)
    t = torch.cat([sd["cls_token"].expand(len(x), -1, -1), t], dim=1) + sd["pos_embed"]
    B, N, _ = t.shape

    def linear(z, key):
        return z @ sd[key + ".weight"].T + sd[key + ".bias"]

    def norm(z, key):
        return F.layer_norm(z, (d,), sd[key + ".weight"], sd[key + ".bias"], eps=1e-6)

    for i, genes in enumerate(arch.blocks):
        p = f"blocks.{i}."
        h = norm(t, p + "norm1")
        g = genes.num_global_heads
        c_g = g * hc
        parts = []
        if g:
            e = int(genes.qkv_ratio * hc)  # per-head width
            assert sd[p + "attn.qkv.weight"].shape == (3 * g * e, c_g)
            q, k, v = (z.reshape(B, N, g, e).transpose(1, 2) for z in linear(h[..., :c_g], p + "attn.qkv").chunk(3, -1))
            attn = torch.softmax(q @ k.transpose(-2, -1) * e**-0.5, dim=-1)
            parts.append(linear((attn @ v).transpose(1, 2).reshape(B, N, g * e), p + "attn.proj"))
        if c_g < d:
            c_l, kernel = d - c_g, genes.kernel_size
            hidden = int(genes.conv_ratio * c_l)
            assert sd[p + "local.pw1.weight"].shape == (2 * hidden, c_l)
            assert sd[p + "local.dw.weight"].shape == (hidden, 1, kernel)
            value, gate = linear(h[..., c_g:], p + "local.pw1").chunk(2, -1)
            u = (value * torch.sigmoid(gate)).transpose(1, 2)  # GLU; (B, hidden, N)
            u = F.conv1d(F.pad(u, (kernel // 2, kernel // 2)), sd[p + "local.dw.weight"], sd[p + "local.dw.bias"],
                         groups=hidden)
            mean, var = sd[p + "local.bn.running_mean"][:, None], sd[p + "local.bn.running_var"][:, None]
            scale, shift = sd[p + "local.bn.weight"][:, None], sd[p + "local.bn.bias"][:, None]
            u = (u - mean) / torch.sqrt(var + bn_eps) * scale + shift
            u = u * torch.sigmoid(u)  # Swish
            parts.append(linear(u.transpose(1, 2), p + "local.pw2"))
        t = t + torch.cat(parts, dim=-1)
        t = t + linear(F.gelu(linear(norm(t, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2")
    return linear(norm(t[:, 0], "norm"), "head")


@pytest.mark.parametrize("arch", [
    Arch(TOY, (block(1, 0.5, 2, 4, 7), block(2, 2, 6, 1, 3))),
    Arch(TOY, (block(0, None, 4, 2, 5), block(3, 1, 4, None, None))),
], ids=["mixed", "local-then-global"])
def test_standalone_model_matches_the_spec(arch):
    model = _randomise(glit.build_model(arch).double()).eval()
    x = _input(TOY)
    bn_eps = next(m.eps for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    with torch.no_grad():
        expected = _reference_forward(model.state_dict(), arch, x, bn_eps)
        assert (model(x) - expected).abs().max().item() <= 1e-10
