"""What each gene means, declared once: the space, the cost model, the network, the checks and the report read it.
Plain Python: no torch here.

A block has H head slots of D / H channels each. Its genes, with the paper's symbols:

- ``num_global_heads`` (G): how many head slots are global self-attention heads. The other L = H - G slots form the
  local module. The global part owns the first C_g = G * D / H token channels, the local part the last C_l = D - C_g.
- ``qkv_ratio`` (e): each global head's Q, K and V are e * D / H wide. Applies when G > 0.
- ``mlp_ratio`` (r): the FFN's hidden width is r * D. Always applies.
- ``local_op``: which locality module the L local slots form (``LOCAL_OPS``). Applies when G < H.
- ``conv_ratio`` (E): the local module's hidden width is E * C_l. Applies when G < H.
- ``kernel_size`` (K): the local module's reach, in tokens of the sequence. Applies when G < H.

A gene that does not apply to a block is stored as ``None``, so two architectures that build the same network compare
equal and hash equal. ``block_dims`` is the one function from a block's genes to its layers' sizes.

**Adding a gene or a local operator** touches its declaration here (``GENES``, or one ``LocalOp`` record in
``LOCAL_OPS`` that names its cost rule and its layer by import path), then writes that rule and that layer. Sampling,
mutation, crossover, JSON, the checks, the CLI and the report go through the declarations, and the generic tests
(supernet equals subnet, cost equals the built model, JSON round trip, samples stay in the space) cover the new
member.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from glit.errors import GlitError

MAX_WIDTH = 1 << 18  # channels of any one layer that a gene may imply
MAX_KERNEL = 4095


@dataclass(frozen=True)
class Gene:
    """One gene: its name, the part of a block it configures, its short name (a table's column), the check of one
    value, and its meaning.

    ``part`` is "block" (always applies), "global" (applies when the block has global heads) or "local" (when it has
    local head slots). ``unit(family, g)``, for a ratio gene, is the width that the ratio multiplies in a block with
    g global heads: the ratio times it must be a whole number of channels.
    """

    name: str
    part: str
    short: str
    meaning: str
    kind: str  # "count" (0..H), "ratio", "odd" (an odd integer), "op" (a name in LOCAL_OPS)
    unit: Callable | None = None
    default: object = None  # the value of a gene that applies but is not given (None: it must be given)
    nested: bool = True  # the values share weights by slicing: the largest value's weights hold every smaller one's


@dataclass(frozen=True)
class LocalOp:
    """One locality module, everything about it in one record: what the L local head slots compute (``meaning``,
    and ``legend``, the few words the report's legend shows), its state-dict name in a block (``layer``), its cost
    rule (``cost``: the import path of ``rule(family, dims, convention) -> PartCost``), its layer (``build``: the
    import path of ``build(family, max_channels, max_hidden, max_kernel) -> nn.Module``) and the sizes it cannot
    take (``check``). Import paths keep this module free of torch; ``resolve`` loads them."""

    name: str
    layer: str
    meaning: str
    legend: str
    cost: str
    build: str
    check: Callable | None = None  # check(dims: BlockDims) -> what is wrong with these sizes, or None


def _heads_split(dims) -> str | None:
    if dims.local_hidden % dims.local_heads:
        return (f"window_attn's hidden width {dims.local_hidden} (conv_ratio x {dims.local_channels}) does not split "
                f"over {dims.local_heads} heads")
    return None


GENES: tuple[Gene, ...] = (
    Gene("num_global_heads", "block", "G", "global self-attention heads among the H head slots", "count",
         nested=False),
    Gene("qkv_ratio", "global", "qkv", "width of Q, K and V per global head, in units of D/H", "ratio",
         lambda fam, g: fam.head_channels),
    Gene("mlp_ratio", "block", "mlp", "FFN hidden width, in units of D", "ratio", lambda fam, g: fam.embed_dim),
    Gene("local_op", "local", "op", "the locality module of the local head slots", "op", default="conv1d",
         nested=False),
    Gene("conv_ratio", "local", "E", "the local module's hidden width, in units of C_l", "ratio",
         lambda fam, g: fam.embed_dim - g * fam.head_channels),
    Gene("kernel_size", "local", "K", "the local module's reach in tokens", "odd"),
)
GENE_NAMES = tuple(g.name for g in GENES)
DETAIL_GENES = GENE_NAMES[1:]  # what level 2 searches
BY_NAME = {g.name: g for g in GENES}

LOCAL_OPS: dict[str, LocalOp] = {op.name: op for op in (
    LocalOp("conv1d", "local", "the paper's module: pointwise conv to 2 E C_l, GLU, a depthwise K-tap convolution "
                               "over the 1-D token sequence (class token included), BatchNorm, Swish, pointwise conv "
                               "back to C_l", "a 1-D convolution over the tokens, the paper's",
            "glit.cost:conv1d_cost", "glit.nn.model:conv1d_layer"),
    LocalOp("window_attn", "local_window", "self-attention of L heads (E D/H wide each) in which each token attends "
                                           "to the K tokens of the sequence centred on it (class token included)",
            "attention within a window of K tokens", "glit.cost:window_attn_cost", "glit.nn.model:window_attn_layer",
            _heads_split),
    LocalOp("conv2d", "local_conv2d", "the conv1d module with a depthwise k x k convolution over the patch grid "
                                      "instead, k = kernel_2d(K) (about K tokens); the class token skips it",
            "a 2-D convolution over the patch grid", "glit.cost:conv2d_cost", "glit.nn.model:conv2d_layer"),
)}


def resolve(path: str):
    """The object at an import path ``module:name`` (a ``LocalOp``'s cost rule or layer builder)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def applies(gene: Gene, g: int, num_heads: int) -> bool:
    """Whether ``gene`` has an effect in a block with ``g`` of ``num_heads`` heads global."""
    return gene.part == "block" or (g > 0 if gene.part == "global" else g < num_heads)


def kernel_2d(kernel_size: int) -> int:
    """The side k of the ``conv2d`` module's k x k kernel for a reach of ``kernel_size`` tokens: the odd integer
    nearest sqrt(K), ties up (9 -> 3, 17 -> 5, 25 -> 5, 31 -> 5, 45 -> 7). Two values of K can give the same k: then
    they are one network under two names, which costs the search nothing but a repeated score."""
    root = math.sqrt(kernel_size)
    low = max(1, int(root) - (int(root) % 2 == 0))  # the odd integer at or below sqrt(K)
    return low if root - low < low + 2 - root else low + 2


@dataclass(frozen=True)
class BlockDims:
    """The sizes of one block's layers: the global attention's (``heads`` 0 when none), the local module's
    (``local_op`` None when none) and the FFN's."""

    heads: int  # G
    head_dim: int  # e * D / H
    global_channels: int  # C_g
    local_op: str | None
    local_heads: int  # L
    local_channels: int  # C_l
    local_hidden: int  # E * C_l
    kernel: int  # K
    mlp_hidden: int  # r * D


def block_dims(family, genes) -> BlockDims:
    """The one function from a block's genes (a ``glit.space.BlockGenes``) to its layers' sizes."""
    g = genes.num_global_heads
    c_g = g * family.head_channels
    c_l = family.embed_dim - c_g
    return BlockDims(
        heads=g,
        head_dim=int(genes.qkv_ratio * family.head_channels) if g else 0,
        global_channels=c_g,
        local_op=genes.local_op if c_l else None,
        local_heads=family.num_heads - g,
        local_channels=c_l,
        local_hidden=int(genes.conv_ratio * c_l) if c_l else 0,
        kernel=genes.kernel_size if c_l else 0,
        mlp_hidden=int(genes.mlp_ratio * family.embed_dim),
    )


def check_block(family, genes, where: str) -> None:
    """Types and ranges of one block's genes, each by its declaration; the widths they imply must be whole numbers
    of channels, and the local operator's own check (``LocalOp.check``) must pass."""
    g = genes.num_global_heads
    if not _is_int(g) or not 0 <= g <= family.num_heads:
        raise GlitError(f"{where}: num_global_heads must be an integer in 0..{family.num_heads}, got {g!r}")
    for gene in GENES[1:]:
        if applies(gene, g, family.num_heads):
            value = getattr(genes, gene.name)
            value = gene.default if value is None else value  # not given: its default, if it has one
            _check_value(gene, value, gene.unit(family, g) if gene.unit else 0, where)
    op = LOCAL_OPS[genes.local_op or BY_NAME["local_op"].default] if g < family.num_heads else None
    problem = op.check(block_dims(family, genes)) if op is not None and op.check else None
    if problem:
        raise GlitError(f"{where}: {problem}")


def _check_value(gene: Gene, value, unit: int, where: str) -> None:
    name = gene.name
    if gene.kind == "op":
        if value not in LOCAL_OPS:
            raise GlitError(f"{where}: {name} must be one of {', '.join(LOCAL_OPS)}, got {value!r}")
    elif gene.kind == "odd":
        if not _is_int(value) or not 1 <= value <= MAX_KERNEL or value % 2 == 0:
            raise GlitError(f"{where}: {name} must be an odd integer in 1..{MAX_KERNEL}, got {value!r}")
    else:  # a ratio of `unit` channels
        if not _is_number(value) or not 0 < value < math.inf:
            raise GlitError(f"{where}: {name} must be a positive number, got {value!r}")
        if value * unit > MAX_WIDTH:
            raise GlitError(f"{where}: {name}={value} gives {value * unit:,.0f} channels (at most {MAX_WIDTH:,})")
        if value * unit != int(value * unit):
            raise GlitError(f"{where}: {name}={value} times {unit} channels is not a whole number of channels")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
