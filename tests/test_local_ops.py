"""The local operators (``glit.genes.LOCAL_OPS``): what each one sees, and that a new operator is one declaration,
one cost rule and one layer. The generic invariants (supernet equals subnet, cost equals the built model and
FlopCounterMode, JSON round trip, samples stay in the space) run over every operator in test_nn, test_cost and
test_space."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from torch import nn

import glit
from glit import Arch, Family, SearchSpace
from glit.cost import PartCost
from glit.genes import LOCAL_OPS, LocalOp, kernel_2d
from glit.nn.layers import Cut, S, Sliceable
from helpers import block, measured_macs

FAMILY = Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=1, num_classes=5)  # a 4x4 grid


def _local_layer(op: str, kernel: int, g: int = 0) -> tuple[nn.Module, dict]:
    arch = Arch(FAMILY, (block(g, None if g == 0 else 1, 2, 2, kernel, op),))
    model = glit.build_model(arch, generator=torch.Generator().manual_seed(0)).double().eval()
    b = model.blocks[0]
    name = LOCAL_OPS[op].layer
    return getattr(b, name), b.sizes(arch.blocks[0])[name]


def _reach(op: str, kernel: int) -> torch.Tensor:
    """reach[i, j]: whether output token i of the local module depends on input token j (from the Jacobian)."""
    layer, sizes = _local_layer(op, kernel)
    x = torch.randn(1, FAMILY.num_tokens, sizes["channels"], dtype=torch.float64, generator=torch.Generator()
                    .manual_seed(1))
    jac = torch.autograd.functional.jacobian(lambda t: layer(t, **sizes), x)  # (1, N, C, 1, N, C)
    return jac[0, :, :, 0].abs().sum(dim=(1, 3)) > 0


@pytest.mark.parametrize("op", ["conv1d", "window_attn"])
@pytest.mark.parametrize("kernel", [3, 5])
def test_a_sequence_operator_sees_the_k_tokens_centred_on_each(op, kernel):
    """conv1d and window_attn reach K // 2 tokens either way along the sequence, the class token as token 0."""
    reach = _reach(op, kernel)
    n = FAMILY.num_tokens
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    assert torch.equal(reach, (i - j).abs() <= kernel // 2)


@pytest.mark.parametrize("kernel", [9, 17])
def test_conv2d_sees_a_k_by_k_window_of_the_grid_and_the_class_token_only_itself(kernel):
    reach, side, grid = _reach("conv2d", kernel), kernel_2d(kernel), FAMILY.img_size // FAMILY.patch_size
    expected = torch.zeros_like(reach)
    expected[0, 0] = True  # the class token skips the depthwise convolution
    for a in range(grid * grid):
        for b in range(grid * grid):
            rows, cols = abs(a // grid - b // grid), abs(a % grid - b % grid)
            expected[1 + a, 1 + b] = rows <= side // 2 and cols <= side // 2
    assert torch.equal(reach, expected)


def test_kernel_2d_is_the_odd_side_nearest_the_square_root():
    assert [kernel_2d(k) for k in (1, 3, 5, 9, 17, 25, 31, 45)] == [1, 1, 3, 3, 5, 5, 5, 7]
    assert all(kernel_2d(k) % 2 == 1 for k in range(1, 200, 2))
    assert all(kernel_2d(k) <= kernel_2d(k + 2) for k in range(1, 200, 2))  # a larger K never narrows the window


def test_window_attention_needs_its_width_to_split_over_its_heads():
    fam = Family(img_size=16, patch_size=4, embed_dim=30, num_heads=3, depth=1, num_classes=5)  # 10 per head slot
    with pytest.raises(glit.GlitError, match="window_attn's hidden width 15 .* does not split over 2 heads"):
        Arch(fam, (block(1, 1, 2, 0.75, 3, "window_attn"),))  # 0.75 x 20 = 15 over 2 heads
    with pytest.raises(glit.GlitError, match="local_op must be one of conv1d, window_attn, conv2d, got 'conv3d'"):
        Arch(FAMILY, (block(0, None, 2, 1, 3, "conv3d"),))


def test_files_written_before_local_op_existed_still_load_as_conv1d():
    old = {"family": FAMILY.to_dict(), "blocks": [{"num_global_heads": 1, "qkv_ratio": 1, "mlp_ratio": 2,
                                                   "conv_ratio": 1, "kernel_size": 3}]}
    arch = Arch.from_dict(old)
    assert arch.blocks[0].local_op == "conv1d" and arch == Arch(FAMILY, (block(1, 1, 2, 1, 3, "conv1d"),))
    space = {"family": FAMILY.to_dict(), "blocks": [{g: [v] for g, v in old["blocks"][0].items()}]}
    assert SearchSpace.from_dict(space).blocks[0].local_op == ("conv1d",)


# -- a new operator is one declaration, one cost rule and one layer ---------------------------------------------------


class _Pointwise(Sliceable):
    """A test-only local operator: Linear(C_l, E C_l), GELU, Linear(E C_l, C_l); it ignores the kernel."""

    def __init__(self, max_channels: int, max_hidden: int):
        super().__init__()
        self.max_channels = max_channels
        self.fc1, self.fc2 = nn.Linear(max_channels, max_hidden), nn.Linear(max_hidden, max_channels)

    def cuts(self, channels: int, hidden: int, kernel: int) -> dict[str, Cut]:
        first = self.max_channels - channels  # the local part owns the last channels of the token
        return {"fc1.weight": Cut(self.fc1.weight, S[:hidden, first:]), "fc1.bias": Cut(self.fc1.bias, S[:hidden]),
                "fc2.weight": Cut(self.fc2.weight, S[first:, :hidden]), "fc2.bias": Cut(self.fc2.bias, S[first:])}

    def forward(self, x, channels: int, hidden: int, kernel: int):
        w = self.weights(channels, hidden, kernel)
        return nn.functional.linear(nn.functional.gelu(nn.functional.linear(x, w["fc1.weight"], w["fc1.bias"])),
                                    w["fc2.weight"], w["fc2.bias"])


def _pointwise_cost(family, dims, convention) -> PartCost:
    t, c, h = family.num_tokens, dims.local_channels, dims.local_hidden
    return PartCost(c * h + h + h * c + c, 2 * t * c * h)


def _pointwise_layer(fam, c, h, k) -> nn.Module:
    return _Pointwise(c, h)


def test_a_new_operator_is_one_record_a_cost_rule_and_a_layer(monkeypatch):
    monkeypatch.setitem(LOCAL_OPS, "pointwise", LocalOp("pointwise", "local_pointwise", "test only", "pointwise",
                                                        f"{__name__}:_pointwise_cost", f"{__name__}:_pointwise_layer"))

    fam = dataclasses.replace(FAMILY, depth=3)
    space = SearchSpace.uniform(fam, num_global_heads=(0, 1, 2, 3), qkv_ratio=(0.5, 1), mlp_ratio=(2, 4),
                                local_op=("conv1d", "pointwise"), conv_ratio=(1, 2), kernel_size=(3, 5))
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(12)]
    archs += [space.mutate(archs[0], rng, 0.5), space.crossover(archs[1], archs[2], rng)]
    assert any(b.local_op == "pointwise" for a in archs for b in a.blocks)
    supernet = glit.Supernet(space, generator=torch.Generator().manual_seed(0)).double().eval()
    x = torch.randn(2, 3, fam.img_size, fam.img_size, dtype=torch.float64)
    for arch in archs:
        assert space.contains(arch) and Arch.from_json(arch.to_json()) == arch  # sampling, variation, JSON
        model = glit.build_model(arch)
        assert glit.cost(arch).params == sum(p.numel() for p in model.parameters())  # the cost model
        assert glit.cost(arch).macs == measured_macs(model.eval(), fam)["total"]
        with torch.no_grad():  # the supernet: its path is the extracted subnet
            assert (supernet(x, arch) - supernet.extract(arch)(x)).abs().max().item() <= 1e-10


@pytest.mark.parametrize("name", list(LOCAL_OPS))
def test_each_record_names_a_cost_rule_and_a_layer_that_agree(name):
    """Each operator's record resolves to its cost rule and its layer, and they agree on the parameters (the generic
    tests above check the MACs and the supernet)."""
    from glit.genes import resolve

    op = LOCAL_OPS[name]
    fam = Family(img_size=8, patch_size=2, embed_dim=24, num_heads=3, depth=1, num_classes=5)
    arch = Arch(fam, (block(1, 1, 2, 2, 5, op=name),))
    dims = glit.genes.block_dims(fam, arch.blocks[0])
    layer = resolve(op.build)(fam, dims.local_channels, dims.local_hidden, dims.kernel)
    assert resolve(op.cost)(fam, dims, "exact").params == sum(p.numel() for p in layer.parameters())
    assert op.legend and op.meaning and op.layer
