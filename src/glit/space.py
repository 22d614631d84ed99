"""Architectures and search spaces: the genes of each block (declared in ``glit.genes``), an architecture, and the
candidate values of each gene. Plain Python: no torch here.

A gene that does not apply to a block is stored as ``None``, so two architectures that build the same network
compare equal and hash equal. ``BlockGenes`` and ``BlockChoices`` are made from the declarations: one field per gene,
in declaration order, keyword-only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from glit.errors import GlitError
from glit.genes import DETAIL_GENES, GENE_NAMES, GENES, applies, check_block

REQUIRED = tuple(g.name for g in GENES if g.default is None)  # genes a space's JSON must list
ALWAYS = tuple(g.name for g in GENES if g.part == "block")  # genes every block of an architecture's JSON has

# Bounds far beyond any vision transformer, so that a typo fails here, not as an allocation of terabytes.
FAMILY_LIMITS = {"img_size": 8192, "patch_size": 8192, "embed_dim": 16384, "num_heads": 1024, "depth": 256,
                 "num_classes": 1_000_000, "in_chans": 64}


@dataclass(frozen=True)
class Family:
    """What every architecture of a space shares: the input, the width, the heads and the depth."""

    img_size: int
    patch_size: int
    embed_dim: int
    num_heads: int
    depth: int
    num_classes: int
    in_chans: int = 3

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value, limit = getattr(self, field.name), FAMILY_LIMITS[field.name]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
                raise GlitError(f"family: {field.name} must be an integer in 1..{limit:,}, got {value!r}")
        if self.img_size % self.patch_size:
            raise GlitError(f"family: img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise GlitError(f"family: embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """Patches plus the class token (197 for 224 px images and 16 px patches)."""
        return self.num_patches + 1

    @property
    def head_channels(self) -> int:
        """Channels per head slot, D / H."""
        return self.embed_dim // self.num_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "family") -> Family:
        if not isinstance(data, dict):
            raise GlitError(f"{where}: expected an object with keys {_names(cls)}")
        _check_keys(data, _names(cls), where, required=[f for f in _names(cls) if f != "in_chans"])
        try:
            return cls(**data)
        except GlitError as err:
            raise GlitError(f"{where}: {str(err).removeprefix('family: ')}") from None


def _canonical(self, num_heads: int):
    """The same block with the genes that have no effect set to ``None``, and a gene that applies but was not given
    (``None``) set to its declared default (``local_op``: conv1d, so files written before it existed still load)."""
    g = self.num_global_heads
    values = {}
    for gene in GENES:
        value = getattr(self, gene.name)
        values[gene.name] = (gene.default if value is None else value) if applies(gene, g, num_heads) else None
    return BlockGenes(**values)


# One field per gene, in declaration order. A gene's value, or None where it does not apply (see the module doc).
BlockGenes = dataclasses.make_dataclass(
    "BlockGenes", [(g.name, object, dataclasses.field(default=None)) for g in GENES], frozen=True, kw_only=True,
    namespace={"canonical": _canonical, "__doc__": "The genes of one block (``glit.genes``); None where one does "
               "not apply.", "__module__": __name__})


@dataclass(frozen=True)
class Arch:
    """One architecture: a family and the genes of each block. A frozen, hashable value that round-trips JSON.
    ``source`` names where it was read from (a file) for error messages; it takes no part in equality."""

    family: Family
    blocks: tuple[BlockGenes, ...]
    source: str = dataclasses.field(default="arch", compare=False, repr=False)

    def __post_init__(self):
        fam = self.family
        blocks = tuple(self.blocks)
        if len(blocks) != fam.depth:
            raise GlitError(f"arch: {len(blocks)} blocks given, but the family's depth is {fam.depth}")
        canonical = []
        for i, genes in enumerate(blocks):
            check_block(fam, genes, f"block {i}")
            canonical.append(genes.canonical(fam.num_heads))
        object.__setattr__(self, "blocks", tuple(canonical))

    def to_dict(self) -> dict:
        return {"family": self.family.to_dict(), "blocks": [dataclasses.asdict(b) for b in self.blocks]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict, where: str = "arch") -> Arch:
        if not isinstance(data, dict):
            raise GlitError(f"{where}: expected a JSON object with keys 'family' and 'blocks'")
        _check_keys(data, ["family", "blocks"], where, required=["family", "blocks"])
        family = Family.from_dict(data["family"], f"{where}: family")
        if not isinstance(data["blocks"], list):
            raise GlitError(f"{where}: 'blocks' must be a list of objects with keys {list(GENE_NAMES)}")
        blocks = []
        for i, b in enumerate(data["blocks"]):
            if not isinstance(b, dict):
                raise GlitError(f"{where}: block {i}: expected an object with keys {list(GENE_NAMES)}")
            _check_keys(b, GENE_NAMES, f"{where}: block {i}", required=ALWAYS)
            blocks.append(BlockGenes(**{g: b.get(g) for g in GENE_NAMES}))
        try:
            return cls(family, tuple(blocks), where)
        except GlitError as err:
            raise GlitError(f"{where}: {str(err).removeprefix('arch: ')}") from None

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> Arch:
        """Read an architecture from JSON text or from a file path."""
        where = "arch"
        text = str(text_or_path)
        looks_like_json = text.lstrip()[:1] in ("{", "[", '"') or text.strip() in ("null", "true", "false")
        if isinstance(text_or_path, Path) or not looks_like_json:
            path = Path(text_or_path)
            where = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                raise GlitError(f"{path}: cannot read architecture file ({err.strerror})") from None
            except UnicodeDecodeError:
                raise GlitError(f"{path}: not an architecture file (not UTF-8 JSON text)") from None
        try:
            data = json.loads(text, parse_constant=_Constant)
        except json.JSONDecodeError as err:
            raise GlitError(f"{where}: malformed JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        bad = _find_constant(data)
        if bad is not None:
            key, name = bad
            raise GlitError(f"{where}: {key}: {name} is not a number that JSON allows")
        return cls.from_dict(data, where)


def _options(self, num_heads: int) -> list:
    """Every distinct (canonical) block this set of choices allows."""
    seen = {}
    for combo in itertools.product(*(getattr(self, g) for g in GENE_NAMES)):
        seen.setdefault(BlockGenes(**dict(zip(GENE_NAMES, combo))).canonical(num_heads), None)
    return list(seen)


# One field per gene: the tuple of its candidate values in one block. A gene with a declared default may be left
# out (``local_op``: only conv1d).
BlockChoices = dataclasses.make_dataclass(
    "BlockChoices", [(g.name, tuple, dataclasses.field(default=None if g.default is None else (g.default,)))
                     for g in GENES], frozen=True, kw_only=True,
    namespace={"options": _options, "__doc__": "The candidate values of each gene for one block.",
               "__module__": __name__})


KINDS = ("global", "mixed", "local")  # a block whose heads are all global, both kinds, or all local


def block_kind(num_global_heads: int, num_heads: int) -> str:
    return "global" if num_global_heads == num_heads else "local" if num_global_heads == 0 else "mixed"


@dataclass(frozen=True)
class SearchSpace:
    """A set of architectures of one family: per block, the candidate values of each gene, and optionally ``pins``:
    genes held at one value in the blocks of one kind, as ``(kind, gene, value)``.

    Pins express the authors' level-2 space (``presets.PAPER_PINS``): all-global blocks choose qkv_ratio x
    mlp_ratio, all-local blocks kernel_size x conv_ratio with mlp_ratio pinned, mixed blocks conv_ratio x mlp_ratio
    with qkv_ratio and kernel_size pinned. Sampling, mutation and crossover apply the pins to every block they make.

    ``sample`` draws G uniformly, then each gene that applies uniformly. In a level-1 space (only G varies) and in
    a level-2 space (G fixed) that is exactly uniform over the space's distinct architectures.
    """

    family: Family
    blocks: tuple[BlockChoices, ...]
    pins: tuple[tuple[str, str, float], ...] = ()

    def __post_init__(self):
        fam = self.family
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "pins", tuple(sorted(tuple(p) for p in self.pins)))
        if len(self.blocks) != fam.depth:
            raise GlitError(f"space: {len(self.blocks)} blocks of choices, but the family's depth is {fam.depth}")
        for kind, gene, _ in self.pins:
            if kind not in KINDS or gene not in DETAIL_GENES:
                raise GlitError(f"space: a pin needs a kind in {KINDS} and a gene in {DETAIL_GENES}, got {kind!r}, "
                                f"{gene!r}")
        for i, choices in enumerate(self.blocks):
            for gene in GENE_NAMES:
                values = getattr(choices, gene)
                if not values or len(set(values)) != len(values):
                    raise GlitError(f"space: block {i}: {gene} needs distinct candidates, got {values!r}")
            for option in choices.options(fam.num_heads):
                check_block(fam, option, f"space: block {i}")
            kinds = {o.num_global_heads: o for o in self.block_options(i)}
            for g in choices.num_global_heads:
                if g not in kinds:
                    raise GlitError(f"space: block {i}: no {block_kind(g, fam.num_heads)} block with "
                                    f"num_global_heads={g} meets the pins {list(self.pins)}")

    def pinned(self, genes: BlockGenes) -> BlockGenes:
        """``genes`` with the pins of its kind applied (a gene that does not apply stays ``None``)."""
        kind = block_kind(genes.num_global_heads, self.family.num_heads)
        values = {gene: value for k, gene, value in self.pins if k == kind}
        return dataclasses.replace(genes, **values).canonical(self.family.num_heads) if values else genes

    def block_options(self, i: int) -> list[BlockGenes]:
        """Every distinct block that block ``i`` of this space allows, pins included."""
        return [o for o in self.blocks[i].options(self.family.num_heads) if self.pinned(o) == o]

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def uniform(cls, family: Family, **choices: Sequence) -> SearchSpace:
        """The same candidate values in every block."""
        _check_keys(choices, GENE_NAMES, "space", required=REQUIRED)
        block = BlockChoices(**{g: tuple(v) for g, v in choices.items()})
        return cls(family, (block,) * family.depth)

    @classmethod
    def single(cls, arch: Arch) -> SearchSpace:
        """The space that holds one architecture. Genes that do not apply keep a placeholder candidate."""
        blocks = []
        for genes in arch.blocks:
            blocks.append(BlockChoices(**{g: (1 if getattr(genes, g) is None else getattr(genes, g),)
                                          for g in GENE_NAMES}))
        return cls(arch.family, tuple(blocks))

    def fix(self, where: str = "space.fix", **genes) -> SearchSpace:
        """The subspace with the given genes fixed: a value for every block, or a sequence with one per block.
        ``where`` names the input in errors (a config key such as ``distribution``)."""
        _check_keys(genes, GENE_NAMES, where)
        blocks = list(self.blocks)
        for gene, value in genes.items():
            values = list(value) if isinstance(value, (list, tuple)) else [value] * self.family.depth
            if len(values) != self.family.depth:
                raise GlitError(f"{where}: {gene} needs {self.family.depth} values (one per block), got {len(values)}")
            for i, v in enumerate(values):
                if v not in getattr(blocks[i], gene):
                    raise GlitError(f"{where}: block {i}: {gene}={v!r} is not a candidate {getattr(blocks[i], gene)}")
                blocks[i] = dataclasses.replace(blocks[i], **{gene: (v,)})
        return SearchSpace(self.family, tuple(blocks), self.pins)

    def pin(self, pins: Iterable[tuple[str, str, float]]) -> SearchSpace:
        """This space with more pins (see the class docstring)."""
        return SearchSpace(self.family, self.blocks, (*self.pins, *pins))

    # -- membership and size ------------------------------------------------------------------------------------

    def check(self, arch: Arch) -> None:
        """Raise a ``GlitError`` that names the first block and gene of ``arch`` outside this space."""
        if arch.family != self.family:
            diffs = [f"{k} {v} (space has {getattr(self.family, k)})" for k, v in arch.family.to_dict().items()
                     if getattr(self.family, k) != v]
            raise GlitError(f"{arch.source}: family differs from the space's: {', '.join(diffs)}")
        for i, (genes, choices) in enumerate(zip(arch.blocks, self.blocks)):
            for gene in GENE_NAMES:
                value = getattr(genes, gene)
                if value is not None and value not in getattr(choices, gene):
                    raise GlitError(f"{arch.source}: block {i}: {gene}={value!r} is outside the space "
                                    f"{getattr(choices, gene)}")
            if self.pinned(genes) != genes:
                kind = block_kind(genes.num_global_heads, self.family.num_heads)
                pins = ", ".join(f"{g}={v:g}" for k, g, v in self.pins if k == kind)
                raise GlitError(f"{arch.source}: block {i}: outside the space, whose {kind} blocks have {pins}")

    def includes(self, other: SearchSpace) -> bool:
        """Whether every architecture of ``other`` is in this space: the same family, and in every block each of its
        options one of this space's."""
        return other.family == self.family and all(
            set(other.block_options(i)) <= set(self.block_options(i)) for i in range(self.family.depth))

    def contains(self, arch: Arch) -> bool:
        try:
            self.check(arch)
        except GlitError:
            return False
        return True

    def size(self) -> int:
        """The number of distinct architectures (genes that do not apply are not counted)."""
        return math.prod(len(self.block_options(i)) for i in range(self.family.depth))

    def num_gene_combinations(self) -> int:
        """The paper's count: every combination of gene values, applicable or not ((4 * 3^4)^12 for Tiny)."""
        return math.prod(len(getattr(c, g)) for c in self.blocks for g in GENE_NAMES)

    def is_single(self) -> bool:
        return self.size() == 1

    # -- sampling and variation ---------------------------------------------------------------------------------

    def sample(self, rng: random.Random) -> Arch:
        return Arch(self.family, tuple(self.pinned(self._sample_block(c, rng)) for c in self.blocks))

    def sample_by_global_heads(self, rng: random.Random) -> Arch:
        """A member drawn in stages: the total number of global heads uniformly among the totals the space allows,
        then the blocks' numbers uniformly among the combinations with that total, then the other genes uniformly.

        Why: a uniform draw sums independent blocks, so its total piles up in the middle (on ``cifar``, 4% of the
        draws have global heads in at most 2 of 6 blocks); a supernet trained on such draws seldom trains the
        mostly-local (and mostly-global) paths that the search scores. Here every total is drawn alike."""
        options = [sorted(set(c.num_global_heads)) for c in self.blocks]
        ways: list[dict[int, int]] = [{} for _ in options] + [{0: 1}]  # ways[i][t]: combinations of blocks i.. with
        for i in reversed(range(len(options))):  # total t
            for t, w in ways[i + 1].items():
                for g in options[i]:
                    ways[i][t + g] = ways[i].get(t + g, 0) + w
        total = rng.choice(sorted(ways[0]))
        heads = []
        for i, choices in enumerate(options):
            g = rng.choices(choices, [ways[i + 1].get(total - x, 0) for x in choices])[0]
            heads.append(g)
            total -= g
        return self.fix(num_global_heads=heads).sample(rng)

    def mutate(self, arch: Arch, rng: random.Random, prob: float) -> Arch:
        """Resample each gene with probability ``prob``. A gene that starts to apply gets a uniform value."""
        blocks = []
        for genes, choices in zip(arch.blocks, self.blocks):
            values = {}
            for gene in GENES:
                old, candidates = getattr(genes, gene.name), getattr(choices, gene.name)
                if not _draws(gene, candidates):
                    values[gene.name] = candidates[0]
                elif rng.random() < prob or old is None:
                    values[gene.name] = rng.choice(candidates)
                else:
                    values[gene.name] = old
            blocks.append(self.pinned(BlockGenes(**values).canonical(self.family.num_heads)))
        return Arch(self.family, tuple(blocks))

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        """Uniform crossover: each gene from either parent. A gene that applies in the child but came as ``None``
        is taken from the other parent, which has it (that parent gave the child its ``num_global_heads``)."""
        blocks = []
        for ga, gb, choices in zip(a.blocks, b.blocks, self.blocks):
            values = {}
            for gene in GENES:
                if not _draws(gene, getattr(choices, gene.name)):
                    values[gene.name] = getattr(choices, gene.name)[0]
                    continue
                first, second = (ga, gb) if rng.random() < 0.5 else (gb, ga)
                value = getattr(first, gene.name)
                values[gene.name] = value if value is not None else getattr(second, gene.name)
            blocks.append(self.pinned(BlockGenes(**values).canonical(self.family.num_heads)))
        return Arch(self.family, tuple(blocks))

    def _sample_block(self, choices: BlockChoices, rng: random.Random) -> BlockGenes:
        """G uniformly, then each gene that applies uniformly, in declaration order."""
        g = rng.choice(choices.num_global_heads)
        values = {"num_global_heads": g}
        for gene in GENES[1:]:
            candidates = getattr(choices, gene.name)
            if applies(gene, g, self.family.num_heads):
                values[gene.name] = rng.choice(candidates) if _draws(gene, candidates) else candidates[0]
        return BlockGenes(**values)

    # -- files --------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = {"family": self.family.to_dict(),
                "blocks": [{g: list(getattr(c, g)) for g in GENE_NAMES} for c in self.blocks]}
        if self.pins:
            data["pins"] = [list(p) for p in self.pins]
        return data

    @classmethod
    def from_dict(cls, data: dict, where: str = "space") -> SearchSpace:
        if not isinstance(data, dict):
            raise GlitError(f"{where}: expected an object with keys 'family' and 'blocks'")
        _check_keys(data, ["family", "blocks", "pins"], where, required=["family", "blocks"])
        if not isinstance(data["blocks"], list):
            raise GlitError(f"{where}: 'blocks' must be a list of objects with keys {list(GENE_NAMES)}")
        blocks = []
        for i, b in enumerate(data["blocks"]):
            if not isinstance(b, dict):
                raise GlitError(f"{where}: block {i}: expected an object with keys {list(GENE_NAMES)}")
            _check_keys(b, GENE_NAMES, f"{where}: block {i}", required=REQUIRED)
            bad = next((g for g in b if not isinstance(b[g], (list, tuple)) or not b[g]), None)
            if bad:
                raise GlitError(f"{where}: block {i}: {bad} must be a non-empty list of choices, got {b[bad]!r}")
            blocks.append(BlockChoices(**{g: tuple(v) for g, v in b.items()}))
        pins = data.get("pins", [])
        if not isinstance(pins, list) or not all(isinstance(p, list) and len(p) == 3 for p in pins):
            raise GlitError(f"{where}: pins must be a list of [kind, gene, value] triples")
        family = Family.from_dict(data["family"], f"{where}: family")
        try:
            return cls(family, tuple(blocks), tuple(map(tuple, pins)))
        except GlitError as err:
            raise GlitError(f"{where}: {str(err).removeprefix('space: ')}") from None
        except TypeError:
            raise GlitError(f"{where}: the choices must be numbers") from None


def _draws(gene, candidates: tuple) -> bool:
    """Whether ``gene`` takes part in the random stream of sampling and variation. A gene with a declared default
    (one added after the first release) does not while it has one candidate, so the spaces that existed before it
    draw the same architectures from the same seed as they always did."""
    return len(candidates) > 1 or gene.default is None


class _Constant(str):
    """NaN, Infinity or -Infinity where a JSON file holds one (Python's json reads them; JSON does not allow them)."""


def _find_constant(data, key: str = "") -> tuple[str, str] | None:
    """The key (``block 1: mlp_ratio``, ``family: embed_dim``) and name of the first ``_Constant`` in ``data``."""
    if isinstance(data, _Constant):
        return key or "the file", str(data)
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, value in items:
        inner = f"block {k}" if key == "blocks" else f"{key}: {k}" if key else str(k)
        found = _find_constant(value, inner)
        if found:
            return found
    return None


def _names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_keys(data: dict, valid: Iterable[str], where: str, required: Iterable[str] = ()) -> None:
    valid = list(valid)
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise GlitError(f"{where}: unknown key {unknown[0]!r} (valid keys: {', '.join(valid)})")
    missing = [k for k in required if k not in data]
    if missing:
        raise GlitError(f"{where}: missing key {missing[0]!r}")
