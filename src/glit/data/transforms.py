"""Per-image transforms (DeiT's recipe, SPEC 1.5), written with Pillow and torch only.

Train: crop (RandomResizedCrop, CIFAR pad-and-crop, or a plain resize), horizontal flip, RandAugment, to tensor,
normalise, random erasing. Eval: resize by ``1 / eval_crop_ratio``, centre crop, to tensor, normalise.

A transform is called as ``transform(img, rng)``: ``img`` an RGB PIL image of any size, ``rng`` a ``random.Random``
that is the only source of randomness, so the same seed gives a bit-identical tensor (3, img_size, img_size).
Transforms are small classes, so they pickle into DataLoader workers.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import torch
from PIL import Image, ImageEnhance

from glit.config import AugConfig
from glit.errors import GlitError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
FILL = (128, 128, 128)  # what geometric RandAugment ops shift in
BICUBIC = Image.Resampling.BICUBIC
_MEAN_255 = torch.tensor(MEAN).mul(255).view(3, 1, 1)
_STD_255 = torch.tensor(STD).mul(255).view(3, 1, 1)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """uint8 RGB image -> normalised float32 (3, H, W): ``(x / 255 - mean) / std``."""
    arr = np.array(img, dtype=np.uint8)  # (H, W, 3); a writable copy, so torch does not warn
    x = torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # (3, H, W)
    return x.float().sub_(_MEAN_255).div_(_STD_255)


def _rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


# -- crops ------------------------------------------------------------------------------------------------------------


def rrc_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
            rng: random.Random) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: (left, top, w, h); 10 tries, then a centre crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def _resize(img: Image.Image, size: int) -> Image.Image:
    return img if img.size == (size, size) else img.resize((size, size), BICUBIC)


# -- RandAugment ------------------------------------------------------------------------------------------------------
# timm's "increasing" op set (DeiT's rand-m9-mstd0.5-inc1): a larger magnitude (0..10) is always a stronger change.


def _signed(value: float, rng: random.Random) -> float:
    return -value if rng.random() > 0.5 else value  # timm's _randomly_negate


def _affine(img: Image.Image, coeffs: tuple) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample=BICUBIC, fillcolor=FILL)


# The lookup-table ops are vectorised with numpy: equal to ImageOps's (tests check it), without its Python loops over
# 768-entry tables, which were a fifth of the whole pipeline's time on 32-px images.
_LEVELS = np.arange(256)
_CHANNELS = np.arange(3)


def _lut(img: Image.Image, lut: np.ndarray) -> Image.Image:
    """Map an RGB image through ``lut``: (256,) for every channel or (3, 256) per channel; clipped to 0..255."""
    arr = np.asarray(img)  # (H, W, 3)
    lut = np.clip(lut, 0, 255).astype(np.uint8)
    return Image.fromarray(lut[arr] if lut.ndim == 1 else lut[_CHANNELS, arr])


def _histograms(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img).reshape(-1, 3).astype(np.intp) + _CHANNELS * 256
    return np.bincount(arr.ravel(), minlength=768).reshape(3, 256)  # (channel, level)


def autocontrast(img: Image.Image) -> Image.Image:
    """ImageOps.autocontrast(img): stretch each channel so its darkest level is 0 and its lightest 255."""
    luts = []
    for h in _histograms(img):
        lo, hi = np.flatnonzero(h)[[0, -1]]
        scale = 255.0 / (hi - lo) if hi > lo else None
        luts.append(_LEVELS if scale is None else (_LEVELS * scale + -lo * scale).astype(np.int64))  # int(): truncate
    return _lut(img, np.stack(luts))


def equalize(img: Image.Image) -> Image.Image:
    """ImageOps.equalize(img): flatten each channel's histogram."""
    luts = []
    for h in _histograms(img):
        used = h[h > 0]
        step = (used.sum() - used[-1]) // 255 if len(used) > 1 else 0
        if not step:
            luts.append(_LEVELS)
        else:
            before = np.concatenate([[0], np.cumsum(h)[:-1]])  # pixels below each level
            luts.append((step // 2 + before) // step)
    return _lut(img, np.stack(luts))


def _posterize(img, m, rng):
    # Deviation from timm's PosterizeIncreasing (keeps 4 - int(m / 10 * 4) bits, down to 0): we keep 8 down to 4 bits
    # (as AutoAugment's original range), so that m9 does not reduce 8-px digits to one bit per channel.
    bits = 8 - int(m / 10 * 4)
    return img if bits >= 8 else _lut(img, _LEVELS & ~(2 ** (8 - bits) - 1))


def _solarize(img, m, rng):
    threshold = 256 - int(m / 10 * 256)  # levels at or above it are inverted
    return _lut(img, np.where(_LEVELS < threshold, _LEVELS, 255 - _LEVELS))


def _solarize_add(img, m, rng):
    return _lut(img, np.where(_LEVELS < 128, _LEVELS + int(m / 10 * 110), _LEVELS))  # clipped at 255


def _enhance(enhancer):
    def op(img, m, rng):
        return enhancer(img).enhance(1.0 + _signed(m / 10 * 0.9, rng))
    return op


OPS = {
    "AutoContrast": lambda img, m, rng: autocontrast(img),
    "Equalize": lambda img, m, rng: equalize(img),
    "Invert": lambda img, m, rng: _lut(img, 255 - _LEVELS),
    "Rotate": lambda img, m, rng: img.rotate(_signed(m / 10 * 30, rng), resample=BICUBIC, fillcolor=FILL),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "SolarizeAdd": _solarize_add,
    "Color": _enhance(ImageEnhance.Color),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "ShearX": lambda img, m, rng: _affine(img, (1, _signed(m / 10 * 0.3, rng), 0, 0, 1, 0)),
    "ShearY": lambda img, m, rng: _affine(img, (1, 0, 0, _signed(m / 10 * 0.3, rng), 1, 0)),
    "TranslateXRel": lambda img, m, rng: _affine(img, (1, 0, _signed(m / 10 * 0.45, rng) * img.size[0], 0, 1, 0)),
    "TranslateYRel": lambda img, m, rng: _affine(img, (1, 0, 0, 0, 1, _signed(m / 10 * 0.45, rng) * img.size[1])),
}
OP_NAMES = tuple(OPS)
_NO_MAGNITUDE = frozenset({"AutoContrast", "Equalize", "Invert"})


def apply_op(img: Image.Image, name: str, magnitude: float, rng: random.Random) -> Image.Image:
    """One RandAugment op at ``magnitude`` (0..10); signed ops draw their sign from ``rng``."""
    return OPS[name](img, magnitude, rng)


class RandAugment:
    """``num_ops`` ops drawn with replacement; each applies with ``prob``, at a magnitude jittered by ``magnitude_std``.

    As timm: the jittered magnitude is clipped to [0, magnitude_max]; an infinite std draws it uniformly in
    [0, magnitude].
    """

    def __init__(self, magnitude: float, num_ops: int = 2, magnitude_std: float = 0.0, prob: float = 0.5,
                 magnitude_max: float = 10.0):
        self.magnitude, self.num_ops, self.magnitude_std = magnitude, num_ops, magnitude_std
        self.prob, self.magnitude_max = prob, magnitude_max

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        for name in rng.choices(OP_NAMES, k=self.num_ops):
            if rng.random() > self.prob:
                continue
            m = self.magnitude
            if name not in _NO_MAGNITUDE:
                if self.magnitude_std == math.inf:
                    m = rng.uniform(0, m)
                elif self.magnitude_std > 0:
                    m = rng.gauss(m, self.magnitude_std)
                m = min(max(m, 0.0), self.magnitude_max)
            img = OPS[name](img, m, rng)
        return img

    def __repr__(self) -> str:
        return (f"RandAugment(magnitude={self.magnitude}, num_ops={self.num_ops}, "
                f"magnitude_std={self.magnitude_std}, prob={self.prob})")


def parse_randaugment(spec: str) -> RandAugment:
    """timm's config string: ``rand-m9-mstd0.5``, ``rand-m9-n2-mstd0.5-inc1`` (keys m, n, mstd, mmax, p, inc1)."""
    parts = spec.split("-")
    if parts[0] != "rand":
        raise GlitError(f"aug.randaugment={spec!r}: expected a timm-style string such as 'rand-m9-mstd0.5'")
    kwargs: dict = {"magnitude": 10.0}
    names = {"m": ("magnitude", float), "n": ("num_ops", int), "mstd": ("magnitude_std", float),
             "mmax": ("magnitude_max", float), "p": ("prob", float)}
    for part in parts[1:]:
        match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d*)?|\.\d+|inf)", part)
        if part == "inc1":
            continue  # our op set is always timm's "increasing" one
        if not match or match[1] not in names:
            raise GlitError(f"aug.randaugment={spec!r}: cannot read {part!r} (keys: m, n, mstd, mmax, p, inc1)")
        key, kind = names[match[1]]
        try:
            kwargs[key] = kind(match[2])
        except ValueError:
            raise GlitError(f"aug.randaugment={spec!r}: {part!r} needs a number") from None
    if kwargs.get("magnitude_std", 0.0) > 100:
        kwargs["magnitude_std"] = math.inf  # timm: mstd > 100 means uniform sampling
    return RandAugment(**kwargs)


# -- random erasing ---------------------------------------------------------------------------------------------------


def erase_box(height: int, width: int, rng: random.Random) -> tuple[int, int, int, int] | None:
    """timm's RandomErasing box: (top, left, h, w) of area 2%..1/3 and aspect 0.3..3.3 (log-uniform), or None."""
    area = height * width
    log_aspect = (math.log(0.3), math.log(1 / 0.3))
    for _ in range(10):
        target_area = rng.uniform(0.02, 1 / 3) * area
        aspect = math.exp(rng.uniform(*log_aspect))
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < width and h < height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    return None


class RandomErasing:
    """With probability ``prob``, fill one ``erase_box`` of a normalised (C, H, W) tensor with N(0, 1) noise."""

    def __init__(self, prob: float):
        self.prob = prob

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if rng.random() >= self.prob:
            return x
        box = erase_box(x.shape[-2], x.shape[-1], rng)
        if box is not None:
            top, left, h, w = box
            gen = torch.Generator().manual_seed(rng.getrandbits(63))
            x[:, top:top + h, left:left + w] = torch.randn((x.shape[0], h, w), generator=gen, dtype=x.dtype)
        return x


# -- pipelines --------------------------------------------------------------------------------------------------------


class TrainTransform:
    """crop -> flip -> RandAugment -> to tensor, normalise -> random erasing; each piece switched by ``AugConfig``."""

    def __init__(self, aug: AugConfig, img_size: int):
        if aug.crop not in ("rrc", "pad", "none"):
            raise GlitError(f"aug.crop must be rrc, pad or none, got {aug.crop!r}")
        if not 0 < aug.crop_scale_min <= 1:
            raise GlitError(f"aug.crop_scale_min must be in (0, 1], got {aug.crop_scale_min}")
        if not 0 <= aug.erasing <= 1:
            raise GlitError(f"aug.erasing must be a probability in [0, 1], got {aug.erasing}")
        self.img_size, self.crop, self.flip = img_size, aug.crop, aug.flip
        self.scale = (aug.crop_scale_min, 1.0)
        self.randaugment = parse_randaugment(aug.randaugment) if aug.randaugment else None
        self.erasing = RandomErasing(aug.erasing) if aug.erasing > 0 else None

    def __call__(self, img: Image.Image, rng: random.Random) -> torch.Tensor:
        img = _rgb(img)
        s = self.img_size
        if self.crop == "rrc":
            left, top, w, h = rrc_box(img.width, img.height, self.scale, (3 / 4, 4 / 3), rng)
            img = img.resize((s, s), BICUBIC, box=(left, top, left + w, top + h))
        elif self.crop == "pad":
            pad = s // 8
            img = _resize(img, s)
            left, top = rng.randint(0, 2 * pad), rng.randint(0, 2 * pad)
            if (left, top) != (pad, pad):
                img = img.crop((left - pad, top - pad, left - pad + s, top - pad + s))  # outside the image is black
        else:
            img = _resize(img, s)
        if self.flip and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.randaugment is not None:
            img = self.randaugment(img, rng)
        x = to_tensor(img)
        if self.erasing is not None:
            x = self.erasing(x, rng)
        return x


class EvalTransform:
    """Resize the short side to ``round(img_size / eval_crop_ratio)`` (bicubic), centre crop, to tensor, normalise."""

    def __init__(self, aug: AugConfig, img_size: int):
        if aug.eval_crop_ratio <= 0:
            raise GlitError(f"aug.eval_crop_ratio must be positive, got {aug.eval_crop_ratio}")
        self.img_size = img_size
        self.resize_to = max(1, round(img_size / aug.eval_crop_ratio))

    def __call__(self, img: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        img = _rgb(img)
        w, h, r = img.width, img.height, self.resize_to
        if min(w, h) != r:  # torchvision's Resize(int): the long side is int(r * long / short)
            w, h = (r, int(r * h / w)) if w <= h else (int(r * w / h), r)
            img = img.resize((w, h), BICUBIC)
        s = self.img_size
        if (w, h) != (s, s):
            left, top = int(round((w - s) / 2)), int(round((h - s) / 2))
            img = img.crop((left, top, left + s, top + s))  # outside the image (ratio > 1) is black, as torchvision
        return to_tensor(img)


def train_transform(aug: AugConfig, img_size: int) -> TrainTransform:
    return TrainTransform(aug, img_size)


def eval_transform(aug: AugConfig, img_size: int) -> EvalTransform:
    return EvalTransform(aug, img_size)
