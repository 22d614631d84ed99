"""Image sources: scikit-learn's bundled digits, and any ImageFolder tree read with Pillow.

Both give a ``Source``: a list of images (decoded uint8 arrays, or file paths decoded on demand), integer labels and
class names. ``ImageDataset`` wraps a source and a transform; it is indexed by ``(index, seed)`` pairs from
``glit.data.sampler.EpochSampler``, so each sample's augmentation has its own seed, independent of workers and ranks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from glit.errors import GlitError

EXTENSIONS = (".jpg", ".jpeg", ".png")
CACHE_AUTO_MAX_IMAGES = 200_000  # "auto" caching decodes small trees (CIFAR-10 is 60k 32-px images: ~180 MB)
CACHE_AUTO_MAX_SIDE = 64


@dataclass
class Source:
    """Images of one split: ``items`` are uint8 HxWx3 arrays (decoded) or paths (decoded on demand)."""

    items: list
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> Source:
        return Source([self.items[i] for i in indices], [self.labels[i] for i in indices], self.classes)


def load_image(item) -> Image.Image:
    """An RGB PIL image from a decoded array or a file path; grayscale and palette images become RGB, and 16-bit
    and 32-bit images are scaled to 8 bits (``to_8bit``). An image over Pillow's decompression-bomb limit is an
    error, as is an unreadable one: both name the file."""
    if isinstance(item, np.ndarray):
        return Image.fromarray(item)
    try:
        with Image.open(item) as img:
            return to_8bit(img).convert("RGB")
    except Image.DecompressionBombError as err:
        raise GlitError(f"{item}: image too large to decode safely ({err})") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise GlitError(f"{item}: unreadable image ({err.__class__.__name__}: {err})") from None


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale (``I;16*``) scaled by 255/65535, and 32-bit integer (``I``) and float (``F``) images scaled
    from their own range (``I`` holding 16-bit data, as Pillow opens 16-bit PNGs, by 255/65535): ``convert("RGB")``
    would clip them all to white. Other modes are returned as they are."""
    if img.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(img, dtype=np.float64) * (255 / 65535)).round().astype(np.uint8))
    if img.mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535:
            scale, low = 255 / 65535 if a.max() > 255 else 1.0, 0.0
        else:
            low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
            scale = 255 / (high - low) if high > low else 0.0
        return Image.fromarray(np.clip((a - low) * scale, 0, 255).round().astype(np.uint8))
    return img


def digits(test_fraction: float, split_seed: int) -> tuple[Source, Source]:
    """scikit-learn's 1,797 real 8x8 handwritten digits (bundled in the wheel, nothing downloaded).

    Pixel values 0..16 are scaled to 0..255 and the gray channel is repeated to RGB. The test split is a fixed,
    seeded ``test_fraction`` of the images.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.repeat((bunch.images * (255 / 16)).round().astype(np.uint8)[..., None], 3, axis=-1)  # (N, 8, 8, 3)
    order = list(range(len(images)))
    random.Random(f"digits-test:{split_seed}").shuffle(order)
    n_test = int(round(test_fraction * len(order)))
    classes = [str(c) for c in bunch.target_names]

    def take(idx):
        idx = sorted(idx)
        return Source([images[i] for i in idx], [int(bunch.target[i]) for i in idx], classes)

    return take(order[n_test:]), take(order[:n_test])


def image_folder(root: str | Path, cache: str = "auto") -> tuple[Source, Source]:
    """``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``root/test``). Classes are sorted folder names.

    Errors name the path: a missing root or split, an empty class, a class set that differs between the splits,
    an unreadable image (found when decoded: at once when cached, else when first loaded).
    """
    root = Path(root)
    if not root.is_dir():
        raise GlitError(f"{root}: data root not found (expected an ImageFolder tree root/{{train,val}}/<class>/*.jpg)")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise GlitError(f"{train_dir}: missing training split (expected root/train/<class>/*.jpg)")
    eval_dir = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
    if eval_dir is None:
        raise GlitError(f"{root}: missing evaluation split (expected root/val/ or root/test/)")
    train, held_out = _scan(train_dir), _scan(eval_dir)
    if set(train) != set(held_out):
        only_train = sorted(set(train) - set(held_out))
        only_eval = sorted(set(held_out) - set(train))
        raise GlitError(f"{root}: class folders differ between {train_dir.name}/ and {eval_dir.name}/ "
                        f"(only in {train_dir.name}: {only_train[:5]}, only in {eval_dir.name}: {only_eval[:5]})")
    classes = sorted(train)
    if len(classes) < 2:
        raise GlitError(f"{train_dir}: {len(classes)} class folder; classification needs at least 2")
    sources = [_source(tree, classes) for tree in (train, held_out)]
    if _should_cache(sources[0], cache):
        sources = [Source([_decode(p) for p in s.items], s.labels, classes) for s in sources]
    return sources[0], sources[1]


def eval_folder(root: str | Path) -> Source:
    """The evaluation split alone (``root/val`` or ``root/test``), for evaluating a trained model: no training split
    needed. Classes are its sorted folder names, which must be the model's."""
    root = Path(root)
    eval_dir = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
    if eval_dir is None:
        raise GlitError(f"{root}: missing evaluation split (expected root/val/ or root/test/)")
    tree = _scan(eval_dir)
    return _source(tree, sorted(tree))


def _scan(split_dir: Path) -> dict[str, list[Path]]:
    """Class folder -> its image files; hidden folders and files (``.ipynb_checkpoints``, ``.DS_Store``) are not
    data."""
    classes = sorted(d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise GlitError(f"{split_dir}: no class folders")
    tree = {}
    for d in classes:
        files = sorted(f for f in d.iterdir()
                       if f.suffix.lower() in EXTENSIONS and f.is_file() and not f.name.startswith("."))
        if not files:
            raise GlitError(f"{d}: empty class folder (no {', '.join(EXTENSIONS)} files)")
        tree[d.name] = files
    return tree


def _source(tree: dict[str, list[Path]], classes: list[str]) -> Source:
    items, labels = [], []
    for label, name in enumerate(classes):
        items += tree[name]
        labels += [label] * len(tree[name])
    return Source(items, labels, classes)


def _should_cache(train: Source, cache: str) -> bool:
    if cache not in ("auto", "yes", "no"):
        raise GlitError(f"data.cache must be auto, yes or no, got {cache!r}")
    if cache != "auto":
        return cache == "yes"
    if len(train) > CACHE_AUTO_MAX_IMAGES:
        return False
    return max(load_image(train.items[0]).size) <= CACHE_AUTO_MAX_SIDE


def _decode(path: Path) -> np.ndarray:
    return np.asarray(load_image(path), dtype=np.uint8)


class ImageDataset:
    """A map-style dataset over a ``Source``, indexed by ``(index, seed)``: the seed drives the augmentation."""

    def __init__(self, source: Source, transform):
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key):
        index, seed = key
        img = load_image(self.source.items[index])
        return self.transform(img, random.Random(seed)), self.source.labels[index]
