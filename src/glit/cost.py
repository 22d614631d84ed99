"""Parameters and MACs of an architecture, computed from its genes alone. No torch here.

Two MAC conventions (SPEC 2):

- ``exact``: every multiply-accumulate of the Linear and Conv layers (patch embedding, depthwise convs and the head
  included) and of the two attention matmuls, QK^T and AV. Biases, norms, activations, softmax and the GLU product
  are not counted. Equals half of ``torch.utils.flop_counter.FlopCounterMode``'s total on the built model.
- ``glit``: the authors' formula, which counts the local module's first pointwise conv once although it outputs
  2 * E * C_l channels. Kept only to compare against the paper's table.

Parameters are ``sum(p.numel())`` of the standalone model; BatchNorm running statistics are buffers, not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from glit.errors import GlitError
from glit.genes import LOCAL_OPS, BlockDims, block_dims, kernel_2d, resolve
from glit.space import Arch, BlockGenes, Family, SearchSpace

CONVENTIONS = ("exact", "glit")


@dataclass(frozen=True)
class PartCost:
    params: int
    macs: int

    def __add__(self, other: PartCost) -> PartCost:
        return PartCost(self.params + other.params, self.macs + other.macs)


ZERO = PartCost(0, 0)


@dataclass(frozen=True)
class BlockCost:
    """One block's cost, split into its global part, local part, FFN and the two LayerNorms."""

    attn: PartCost
    local: PartCost
    mlp: PartCost
    norms: PartCost

    @property
    def total(self) -> PartCost:
        return self.attn + self.local + self.mlp + self.norms


@dataclass(frozen=True)
class Cost:
    """An architecture's cost: totals, and a breakdown into the stem, each block and the head."""

    params: int
    macs: int
    stem: PartCost
    blocks: tuple[BlockCost, ...]
    head: PartCost
    convention: str


def block_cost(family: Family, genes: BlockGenes, convention: str = "exact") -> BlockCost:
    """The params and MACs of one block with these genes, for ``family.num_tokens`` tokens per image."""
    d, t = family.embed_dim, family.num_tokens
    dims = block_dims(family, genes)
    attn = local = ZERO
    if dims.heads:
        c_g, e = dims.global_channels, dims.heads * dims.head_dim  # token channels; Q, K, V width
        params = c_g * 3 * e + 3 * e + e * c_g + c_g  # qkv (with bias) and proj (with bias)
        macs = t * c_g * 3 * e + 2 * t * t * e + t * e * c_g  # qkv, QK^T and AV, proj
        attn = PartCost(params, macs)
    if dims.local_op:
        local = resolve(LOCAL_OPS[dims.local_op].cost)(family, dims, convention)
    r = dims.mlp_hidden
    mlp = PartCost(d * r + r + r * d + d, 2 * t * d * r)
    norms = PartCost(4 * d, 0)
    return BlockCost(attn, local, mlp, norms)


# -- the local operators' cost rules, one per operator (named by its glit.genes.LOCAL_OPS record) --------

def _conv_module(family: Family, dims: BlockDims, convention: str, taps: int, tokens_convolved: int) -> PartCost:
    """The conv module (pointwise to 2h, GLU, depthwise of ``taps`` taps over ``tokens_convolved`` tokens,
    BatchNorm, Swish, pointwise back), h = E C_l."""
    t, c, h = family.num_tokens, dims.local_channels, dims.local_hidden
    params = c * 2 * h + 2 * h + h * taps + h + 2 * h + h * c + c  # pw1, dw, BatchNorm, pw2
    pw1_out = 2 * h if convention == "exact" else h  # the authors count the GLU's input as h wide
    return PartCost(params, t * c * pw1_out + tokens_convolved * h * taps + t * h * c)


def conv1d_cost(family: Family, dims: BlockDims, convention: str) -> PartCost:
    return _conv_module(family, dims, convention, dims.kernel, family.num_tokens)


def conv2d_cost(family: Family, dims: BlockDims, convention: str) -> PartCost:
    """The 2-D depthwise conv runs over the patches only; the class token skips it."""
    return _conv_module(family, dims, convention, kernel_2d(dims.kernel) ** 2, family.num_patches)


def window_attn_cost(family: Family, dims: BlockDims, convention: str) -> PartCost:
    """qkv C_l -> 3h and proj h -> C_l (with biases); each token's scores and weighted sum over K tokens."""
    t, c, h = family.num_tokens, dims.local_channels, dims.local_hidden
    params = c * 3 * h + 3 * h + h * c + c
    return PartCost(params, t * c * 3 * h + 2 * t * dims.kernel * h + t * h * c)



def cost(arch: Arch, convention: str = "exact") -> Cost:
    """Params and MACs (per image) of ``arch``, with a per-block breakdown."""
    if convention not in CONVENTIONS:
        raise GlitError(f"unknown MAC convention {convention!r} (valid: {', '.join(CONVENTIONS)})")
    fam = arch.family
    d, p = fam.embed_dim, fam.patch_size
    patch_in = fam.in_chans * p * p
    stem = PartCost(patch_in * d + d + d + fam.num_tokens * d, fam.num_patches * patch_in * d)  # proj, cls, pos
    head = PartCost(2 * d + d * fam.num_classes + fam.num_classes, d * fam.num_classes)  # final norm, classifier
    blocks = tuple(block_cost(fam, genes, convention) for genes in arch.blocks)
    total = stem + head
    for b in blocks:
        total = total + b.total
    return Cost(total.params, total.macs, stem, blocks, head, convention)


def extremes(space: SearchSpace, key: str = "macs", convention: str = "exact") -> tuple[Arch, Arch]:
    """The smallest and the largest member of ``space`` by ``key`` ("macs" or "params").

    Exact, not sampled: a block's cost depends only on its own genes, so each block is minimised on its own.
    """
    if key not in ("macs", "params"):
        raise GlitError(f"unknown cost key {key!r} (valid: macs, params)")
    fam = space.family
    lo, hi = [], []
    for i in range(fam.depth):
        options = space.block_options(i)
        totals = [(getattr(block_cost(fam, o, convention).total, key), i) for i, o in enumerate(options)]
        lo.append(options[min(totals)[1]])
        hi.append(options[max(totals)[1]])
    return Arch(fam, tuple(lo)), Arch(fam, tuple(hi))
