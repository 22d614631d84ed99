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


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        raise GlitError(f"unknown {what} {name!r} (valid: {', '.join(table)})")
    return table[name]


def level1_part(name: str, space: SearchSpace) -> SearchSpace:
    """The level-1 members of ``space``: its detail genes fixed at preset ``name``'s level-1 values."""
    return space.fix(**dict(_lookup(SPACES, name, "space preset").level1))


def paper_pins(name: str) -> tuple[tuple[str, str, float], ...]:
    """The authors' level-2 space (their released ``glit_models.py``) as pins on the full space: all-global blocks
    choose qkv_ratio x mlp_ratio; all-local blocks kernel_size x conv_ratio, mlp_ratio at its level-1 value (4);
    mixed blocks conv_ratio x mlp_ratio, qkv_ratio (1) and kernel_size (the middle one) at their level-1 values.
    Nine options per block of each kind; the released GLiT-Tiny fits it."""
    level1 = dict(_lookup(SPACES, name, "space preset").level1)
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
    preset = _lookup(SPACES, name, "space preset")
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
        return full.fix(num_global_heads=list(distribution))
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
    return _lookup(ARCHS, name, "architecture preset")()


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


IMAGENET_TRAIN = 1_281_167  # ImageNet-1k's training images: the reference size of the tiny/small/base recipes


def run_preset(name: str):
    """The full run configuration of a space preset: data, augmentation and the two recipes.

    - ``tiny``/``small``/``base``: DeiT's recipe for retraining (300 epochs, batch 1024, lr 5e-4 per 512, AdamW
      wd 0.05, 5 warm-up epochs, RandAugment m9 mstd0.5, Mixup 0.8, CutMix 1.0, erasing 0.25, repeated
      augmentation x3, drop path 0.1, bf16). The paper gives no supernet recipe; we train the supernet with the
      same optimiser and augmentation for 100 epochs, and drop path 0 (single-path sampling already regularises).
    - ``cifar``: CIFAR-10 at 32 px, a CPU-sized recipe: pad-and-crop plus flip, label smoothing 0.1, no RandAugment,
      Mixup, CutMix or erasing (they slow convergence too much in a few epochs), 20k training images; supernets
      6 epochs at level 1 and 4 for the two warm-started level-2 ones (so ``glit run cifar`` fits 45 minutes on 2
      cores with the whole-space supernet of the random-search baseline); the level-1 supernet trains over the
      whole space (``search.level1_supernet="whole"``: level 2 then replaces the level-1 details, and the searched
      architectures of two pipeline seeds retrained to 63.39% and 59.35%, against 58.49% with a level-1-only
      supernet); lr 8e-3 per
      512 images (2e-3 at batch 128): for 8 epochs it beats 2e-3 per 512 by 2.1 points on the DeiT-style
      baseline (54.14% vs 52.06%) and by 5.8 on a searched mix (61.23% vs 55.42%); see bench/RESULTS.md.
    - ``demo``: digits at 8 px: no augmentation but label smoothing (no flip: digits are not mirror-symmetric; no
      crop: a one-pixel shift is an eighth of the image, and it halves what a supernet learns in a few epochs).

    **Length sized by the data.** Every recipe is stated in images seen (``images``; ``glit.train.optim.sized``):
    the epochs above are those of the reference data (ImageNet-1k's 1,281,167 training images less the 50,000 of
    the search split for supernets; CIFAR's 20,000-image subset, 19,000 for supernets; the digits' 1,438 and
    1,138), and another tree gets ``images / its training images`` epochs, at least 1 and at most ``max_epochs``
    (1000, 100, 200): a 2,000-image tree trains the ``cifar`` recipe for 80 epochs, as many steps as CIFAR's 20k
    do, and a 10x larger one for 1. The warm-up scales alike. ``--epochs`` or ``--set train.epochs=N`` without
    ``images`` means exactly N epochs.
    """
    from glit.config import AugConfig, Config, DataConfig, OptimConfig, SearchConfig, SupernetConfig

    _lookup(SPACES, name, "preset")
    if name == "demo":
        # No crop: a 1-pixel shift of an 8x8 digit with 2x2 patches halves what the supernet learns in 8 epochs.
        light = AugConfig(crop="none", flip=False, randaugment="", mixup=0.0, cutmix=0.0, erasing=0.0,
                          repeated_aug=1, eval_crop_ratio=1.0)
        return Config(
            preset=name,
            data=DataConfig(source="digits", search_size=300, workers=0),
            aug=light,
            train=OptimConfig(epochs=25, batch_size=32, lr=6e-2, warmup_epochs=2, drop_path=0.0,
                              images=25 * 1438, max_epochs=200),
            supernet=SupernetConfig(optim=OptimConfig(epochs=20, batch_size=32, lr=6e-2, warmup_epochs=2,
                                                      drop_path=0.0, images=20 * 1138, max_epochs=200), eval_archs=2),
            search=SearchConfig(population=20, generations=6, parents=5, mutations=10, crossovers=10,
                                bn_batches=2, batch_size=256, level2_epochs=10),
        )
    if name == "cifar":
        light = AugConfig(crop="pad", flip=True, randaugment="", mixup=0.0, cutmix=0.0, erasing=0.0,
                          repeated_aug=1, eval_crop_ratio=1.0)
        return Config(
            preset=name,
            data=DataConfig(source="folder", search_size=1000, train_subset=20000, workers=2),
            aug=light,
            train=OptimConfig(epochs=8, batch_size=128, lr=8e-3, warmup_epochs=1, drop_path=0.0,
                              images=8 * 20_000, max_epochs=100),
            supernet=SupernetConfig(optim=OptimConfig(epochs=6, batch_size=128, lr=8e-3, warmup_epochs=1,
                                                      drop_path=0.0, images=6 * 19_000, max_epochs=100),
                                    eval_archs=2),
            search=SearchConfig(population=20, generations=5, parents=5, mutations=10, crossovers=10,
                                bn_batches=2, batch_size=256, level2_epochs=4, level1_supernet="whole"),
        )
    deit_recipe = OptimConfig(epochs=300, batch_size=1024, lr=5e-4, amp="bf16", images=300 * IMAGENET_TRAIN,
                              max_epochs=1000)
    return Config(
        preset=name,
        data=DataConfig(source="folder", search_size=50000, workers=8),
        aug=AugConfig(),
        train=deit_recipe,
        supernet=SupernetConfig(optim=OptimConfig(epochs=100, batch_size=1024, lr=5e-4, amp="bf16", drop_path=0.0,
                                                  images=100 * (IMAGENET_TRAIN - 50000), max_epochs=1000)),
    )
