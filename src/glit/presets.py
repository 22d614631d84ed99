"""Named model families and search spaces, and the reference architectures of SPEC section 2.

Space presets:

- ``demo``: scikit-learn's digits (8x8 px), patch 2 (16 + 1 tokens), D 48, H 3, depth 4. For CPU in minutes.
- ``cifar``: CIFAR-10 at 32 px, patch 4 (64 + 1 tokens), D 96, H 3, depth 6: a few million MACs per image per block.
- ``tiny``, ``small``, ``base``: the paper's ImageNet settings: 224 px, patch 16, D 192/384/768, H 3/6/12, depth 12.

Every preset uses the paper's candidate sets for ``qkv_ratio`` {0.5, 1, 2}, ``mlp_ratio`` {2, 4, 6} and
``conv_ratio`` {1, 2, 4}, and G in {0, H/3, 2H/3, H}. Kernel sizes scale with the token grid. The paper's
{17, 31, 45} on 224 px images (a 14x14 grid) reach about 1, 2 and 3 rows of tokens either way; ``cifar`` (an 8x8
grid) uses {9, 17, 25} and ``demo`` (a 4x4 grid) uses {3, 5, 9} for the same reach. Level 1 fixes the detail genes at
qkv_ratio 1, mlp_ratio 4, conv_ratio 1 and the middle kernel (SPEC 1.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from glit.errors import GlitError
from glit.space import Arch, BlockGenes, Family, SearchSpace


@dataclass(frozen=True)
class SpacePreset:
    family: Family
    qkv_ratio: tuple[float, ...] = (0.5, 1, 2)
    mlp_ratio: tuple[float, ...] = (2, 4, 6)
    conv_ratio: tuple[float, ...] = (1, 2, 4)
    kernel_size: tuple[int, ...] = (17, 31, 45)
    level1: tuple[tuple[str, float], ...] = (("qkv_ratio", 1), ("mlp_ratio", 4), ("conv_ratio", 1), ("kernel_size", 31))

    def full_space(self, local_ops: Sequence[str] = ("conv1d",)) -> SearchSpace:
        h = self.family.num_heads
        return SearchSpace.uniform(
            self.family,
            num_global_heads=sorted({0, h // 3, 2 * h // 3, h}),
            qkv_ratio=self.qkv_ratio,
            mlp_ratio=self.mlp_ratio,
            local_op=tuple(local_ops),
            conv_ratio=self.conv_ratio,
            kernel_size=self.kernel_size,
        )


def _level1(kernel: int) -> tuple:
    return (("qkv_ratio", 1), ("mlp_ratio", 4), ("conv_ratio", 1), ("kernel_size", kernel))


SPACES: dict[str, SpacePreset] = {
    "demo": SpacePreset(Family(img_size=8, patch_size=2, embed_dim=48, num_heads=3, depth=4, num_classes=10),
                        kernel_size=(3, 5, 9), level1=_level1(5)),
    "cifar": SpacePreset(Family(img_size=32, patch_size=4, embed_dim=96, num_heads=3, depth=6, num_classes=10),
                         kernel_size=(9, 17, 25), level1=_level1(17)),
    "tiny": SpacePreset(Family(img_size=224, patch_size=16, embed_dim=192, num_heads=3, depth=12, num_classes=1000)),
    "small": SpacePreset(Family(img_size=224, patch_size=16, embed_dim=384, num_heads=6, depth=12, num_classes=1000)),
    "base": SpacePreset(Family(img_size=224, patch_size=16, embed_dim=768, num_heads=12, depth=12, num_classes=1000)),
}


def lookup(table: dict, name: str, what: str):
    if name not in table:
        raise GlitError(f"unknown {what} {name!r} (valid: {', '.join(table)})")
    return table[name]


def level1_part(name: str, space: SearchSpace) -> SearchSpace:
    """The level-1 members of ``space``: its detail genes fixed at preset ``name``'s level-1 values."""
    return space.fix(**dict(lookup(SPACES, name, "space preset").level1))


def paper_pins(name: str) -> tuple[tuple[str, str, float], ...]:
    """The authors' level-2 space (their released ``glit_models.py``) as pins on the full space: all-global blocks
    choose qkv_ratio x mlp_ratio; all-local blocks kernel_size x conv_ratio, mlp_ratio at its level-1 value (4);
    mixed blocks conv_ratio x mlp_ratio, qkv_ratio (1) and kernel_size (the middle one) at their level-1 values.
    Nine options per block of each kind; the released GLiT-Tiny fits it."""
    level1 = dict(lookup(SPACES, name, "space preset").level1)
    return (("local", "mlp_ratio", level1["mlp_ratio"]), ("mixed", "qkv_ratio", level1["qkv_ratio"]),
            ("mixed", "kernel_size", level1["kernel_size"]))


LEVEL2_SPACES = ("full", "paper")


def space_preset(name: str, level: int = 1, distribution: Arch | Sequence[int] | None = None,
                 level2_space: str = "full", local_ops: Sequence[str] = ("conv1d",)) -> SearchSpace:
    """A preset's space. Level 1 varies only ``num_global_heads``. Level 2 fixes the distribution (the number of
    global heads per block, from ``distribution``) and varies the other genes. Level 2 with no distribution leaves
    every gene free: it is the union of all level-2 spaces, and a supernet built on it can host any of them.
    ``level2_space`` "paper" gives level 2 the authors' 9 options per block (``paper_pins``). ``local_ops`` are the
    candidates of the ``local_op`` gene (``glit.genes.LOCAL_OPS``): the paper's conv1d alone by default, at both
    levels (level 1 fixes only the ratios and the kernel)."""
    preset = lookup(SPACES, name, "space preset")
    if level2_space not in LEVEL2_SPACES:
        raise GlitError(f"search.level2_space must be full or paper, got {level2_space!r}")
    full = preset.full_space(local_ops)
    if level2_space == "paper":
        full = full.pin(paper_pins(name))
    if level == 1:
        if distribution is not None:
            raise GlitError("a level-1 space searches the distribution; do not pass one")
        return level1_part(name, full)
    if level == 2:
        if distribution is None:
            return full
        if isinstance(distribution, Arch):
            distribution = [b.num_global_heads for b in distribution.blocks]
        return full.fix("distribution", num_global_heads=list(distribution))
    raise GlitError(f"level must be 1 or 2, got {level!r}")


def deit(family: Family) -> Arch:
    """The DeiT-style architecture: every head global, qkv_ratio 1, mlp_ratio 4."""
    block = BlockGenes(num_global_heads=family.num_heads, qkv_ratio=1, mlp_ratio=4, conv_ratio=None, kernel_size=None)
    return Arch(family, (block,) * family.depth)


def _glit_tiny_released() -> Arch:
    """The architecture of the released GLiT-Tiny checkpoint (SPEC 2)."""
    g = [3, 0, 1, 3, 0, 1, 3, 1, 0, 3, 0, 3]
    qkv = [0.5, None, 1, 1, None, 1, 1, 1, None, 1, None, 2]
    conv = [None, 2, 4, None, 4, 4, None, 4, 4, None, 4, None]
    kernel = [None, 31, 31, None, 45, 31, None, 31, 45, None, 31, None]
    mlp = [4, 4, 6, 4, 4, 6, 2, 2, 4, 4, 4, 6]
    blocks = tuple(BlockGenes(num_global_heads=a, qkv_ratio=b, mlp_ratio=c, conv_ratio=d, kernel_size=e)
                   for a, b, c, d, e in zip(g, qkv, mlp, conv, kernel))
    return Arch(SPACES["tiny"].family, blocks)


ARCHS = {
    "deit-demo": lambda: deit(SPACES["demo"].family),
    "deit-cifar": lambda: deit(SPACES["cifar"].family),
    "deit-tiny": lambda: deit(SPACES["tiny"].family),
    "deit-small": lambda: deit(SPACES["small"].family),
    "deit-base": lambda: deit(SPACES["base"].family),
    "glit-tiny-released": _glit_tiny_released,
}


def arch_preset(name: str) -> Arch:
    return lookup(ARCHS, name, "architecture preset")()


def load_arch(file_or_name: str) -> Arch:
    """An architecture preset by name, or an architecture JSON file."""
    if file_or_name in ARCHS:
        return arch_preset(file_or_name)
    if Path(file_or_name).exists() or file_or_name.endswith(".json"):
        arch = Arch.from_json(Path(file_or_name))
        if arch.family.in_chans != 3:
            raise GlitError(f"{file_or_name}: family.in_chans={arch.family.in_chans}, but glit feeds models 3-channel "
                            "(RGB) images (grayscale is converted); set in_chans to 3")
        return arch
    raise GlitError(f"unknown architecture {file_or_name!r}: not a file, and not a preset ({', '.join(ARCHS)})")
