"""Image transforms and batch mixing: shapes, determinism, each augmentation doing what it says."""

import functools
import math
import pickle
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from glit.config import AugConfig
from glit.data.mixup import cutmix_box, mix_batch, sample_beta, smooth_one_hot, soft_target_cross_entropy
from glit.data.transforms import (
    MEAN,
    OPS,
    STD,
    RandomErasing,
    apply_op,
    autocontrast,
    equalize,
    erase_box,
    eval_transform,
    parse_randaugment,
    rrc_box,
    to_tensor,
    train_transform,
)
from glit.errors import GlitError


@functools.cache
def digit_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images  # (N, 8, 8), values 0..16


def colour_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """Red and green gradients with a real handwritten digit in blue: every op has something to change."""
    digit = digit_images()[seed] * (255 / 16)  # (8, 8)
    blue = np.asarray(Image.fromarray(digit.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR))
    xs = np.linspace(30, 220, width)[None, :].repeat(height, 0)
    ys = np.linspace(10, 180, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([xs, ys, blue], axis=-1).astype(np.uint8))


def reference_tensor(img: Image.Image) -> torch.Tensor:
    arr = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1) / 255
    return (arr - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


PLAIN = dict(flip=False, randaugment="", erasing=0.0)  # switch off everything but the crop


# -- pipelines --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", ["rrc", "pad", "none"])
@pytest.mark.parametrize("img_size", [8, 32, 224])
def test_train_shapes_for_every_crop_and_input_size(crop, img_size):
    tf = train_transform(AugConfig(crop=crop), img_size)
    for w, h in [(img_size, img_size), (13, 20), (300, 257)]:
        x = tf(colour_image(w, h), random.Random(w))
        assert x.shape == (3, img_size, img_size) and x.dtype == torch.float32 and x.is_contiguous()
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("img_size", [8, 32, 224])
def test_eval_shapes_and_grayscale_inputs(img_size):
    tf = eval_transform(AugConfig(), img_size)
    gray = colour_image(40, 31).convert("L")
    for img in [gray, gray.convert("RGB"), colour_image(img_size, img_size), colour_image(300, 257)]:
        x = tf(img, None)
        assert x.shape == (3, img_size, img_size) and x.dtype == torch.float32
    assert torch.equal(tf(gray, None), tf(gray.convert("RGB"), None))
    x = train_transform(AugConfig(), img_size)(gray.convert("RGB"), random.Random(0))
    assert x.shape == (3, img_size, img_size)


def test_train_is_a_function_of_the_seed():
    tf = train_transform(AugConfig(crop="rrc"), 32)
    img = colour_image(48, 40)
    assert torch.equal(tf(img, random.Random(7)), tf(img, random.Random(7)))
    assert not torch.equal(tf(img, random.Random(7)), tf(img, random.Random(8)))
    clone = pickle.loads(pickle.dumps(tf))  # what a DataLoader worker receives
    assert torch.equal(clone(img, random.Random(7)), tf(img, random.Random(7)))


def test_train_leaves_the_global_rngs_alone():
    tf = train_transform(AugConfig(erasing=1.0), 32)

    def draws(run_transform):
        random.seed(0)
        torch.manual_seed(0)
        np.random.seed(0)
        if run_transform:
            for seed in range(10):
                tf(colour_image(40, 40), random.Random(seed))
        return random.random(), torch.rand(3), np.random.rand()

    (a, b, c), (d, e, f) = draws(True), draws(False)
    assert a == d and torch.equal(b, e) and c == f


def test_eval_is_deterministic_and_exact_on_ready_images():
    img = colour_image(32, 32)
    tf = eval_transform(AugConfig(eval_crop_ratio=1.0), 32)
    assert torch.equal(tf(img, None), tf(img, random.Random(3)))
    torch.testing.assert_close(tf(img, None), reference_tensor(img))
    # 256 short side at ratio 0.875 for 224: no resize, just the centre crop (torchvision rounds the offsets)
    big = colour_image(300, 256)
    torch.testing.assert_close(eval_transform(AugConfig(), 224)(big), reference_tensor(big.crop((38, 16, 262, 240))))
    small = eval_transform(AugConfig(), 224)(colour_image(64, 64))
    assert small.shape == (3, 224, 224)


def test_rrc_at_full_scale_keeps_the_whole_image():
    img = colour_image(32, 32)
    tf = train_transform(AugConfig(crop="rrc", crop_scale_min=1.0, **PLAIN), 32)
    for seed in range(5):
        torch.testing.assert_close(tf(img, random.Random(seed)), reference_tensor(img))


def test_rrc_boxes_respect_scale_and_ratio():
    rng = random.Random(0)
    fractions = []
    for _ in range(300):
        left, top, w, h = rrc_box(200, 150, (0.08, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= left and left + w <= 200 and 0 <= top and top + h <= 150
        fractions.append(w * h / (200 * 150))
        assert 0.07 <= fractions[-1] <= 1.0
    assert min(fractions) < 0.2 and max(fractions) > 0.8
    assert rrc_box(100, 10, (0.9, 1.0), (3 / 4, 4 / 3), rng) == (43, 0, 13, 10)  # too wide: centre-crop fallback


def test_pad_crop_shifts_by_at_most_an_eighth_and_fills_black():
    img = Image.new("RGB", (32, 32), (200, 200, 200))
    tf = train_transform(AugConfig(crop="pad", **PLAIN), 32)
    black = reference_tensor(Image.new("RGB", (1, 1)))[:, 0, 0]
    shifted = 0
    for seed in range(30):
        x = tf(img, random.Random(seed))
        is_black = torch.isclose(x, black.view(3, 1, 1)).all(0)  # (H, W)
        rows, cols = (~is_black).any(1).nonzero().flatten(), (~is_black).any(0).nonzero().flatten()
        assert len(rows) >= 28 and len(cols) >= 28
        assert (~is_black[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]).all()  # the image is one unbroken rectangle
        shifted += bool(is_black.any())
    assert shifted > 20


def test_flip_mirrors():
    img = colour_image(16, 16)
    tf = train_transform(AugConfig(crop="none", flip=True, randaugment="", erasing=0.0), 16)
    outs = [tf(img, random.Random(seed)) for seed in range(20)]
    ref = reference_tensor(img)
    flips = sum(torch.allclose(x, ref.flip(-1)) for x in outs)
    assert flips + sum(torch.allclose(x, ref) for x in outs) == 20 and 3 < flips < 17


# -- RandAugment ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_randaugment_op_changes_a_real_image(name):
    img = colour_image(32, 32, seed=3)
    ref = np.asarray(img)
    changed = [not np.array_equal(np.asarray(apply_op(img, name, m, random.Random(s))), ref)
               for m in (5.0, 10.0) for s in range(3)]
    assert any(changed)
    out = apply_op(img, name, 9.0, random.Random(0))
    assert out.size == img.size and out.mode == "RGB"
    if name not in ("AutoContrast", "Equalize", "Invert"):  # magnitude 0 is the identity
        assert np.array_equal(np.asarray(apply_op(img, name, 0.0, random.Random(0))), ref)


def test_lookup_table_ops_equal_pillows():
    rs = np.random.RandomState(0)
    images = [colour_image(32, 32), colour_image(7, 11, seed=5), Image.new("RGB", (5, 5), (3, 128, 250)),
              Image.fromarray(rs.randint(0, 256, (16, 16, 3), dtype=np.uint8)),
              Image.fromarray(rs.choice([0, 255], (9, 9, 3)).astype(np.uint8)),
              Image.fromarray(rs.randint(100, 103, (20, 20, 3), dtype=np.uint8))]
    rng = random.Random(0)
    for img in images:
        def same(a, b):
            return np.array_equal(np.asarray(a), np.asarray(b))

        assert same(autocontrast(img), ImageOps.autocontrast(img))
        assert same(equalize(img), ImageOps.equalize(img))
        assert same(apply_op(img, "Invert", 0, rng), ImageOps.invert(img))
        for m in (0.0, 3.3, 9.0, 10.0):
            assert same(apply_op(img, "Solarize", m, rng), ImageOps.solarize(img, 256 - int(m / 10 * 256)))
            bits = 8 - int(m / 10 * 4)
            assert same(apply_op(img, "Posterize", m, rng), ImageOps.posterize(img, bits))
            add = int(m / 10 * 110)
            lut = [min(255, i + add) if i < 128 else i for i in range(256)]
            assert same(apply_op(img, "SolarizeAdd", m, rng), img.point(lut * 3))


def test_randaugment_strength_grows_with_magnitude():
    img = colour_image(32, 32)
    ref = np.asarray(img, dtype=np.float64)
    for name in ["Rotate", "Solarize", "Posterize", "Contrast", "ShearX", "TranslateYRel"]:
        diffs = [np.abs(np.asarray(apply_op(img, name, m, random.Random(0)), dtype=np.float64) - ref).mean()
                 for m in (2.0, 9.0)]
        assert diffs[0] < diffs[1], name


def test_parse_randaugment():
    ra = parse_randaugment("rand-m9-mstd0.5")
    assert (ra.magnitude, ra.num_ops, ra.magnitude_std, ra.prob) == (9.0, 2, 0.5, 0.5)
    ra = parse_randaugment("rand-m7-n3-mstd0.5-inc1")
    assert (ra.magnitude, ra.num_ops) == (7.0, 3)
    assert parse_randaugment("rand-m9-mstd101").magnitude_std == math.inf
    for bad in ["rand-m9-x2", "auto-m9", "rand-mfoo", "rand-m9-inc0"]:
        with pytest.raises(GlitError):
            parse_randaugment(bad)


def test_randaugment_applies_about_half_its_ops():
    img = colour_image(32, 32)
    ra = parse_randaugment("rand-m9-n1")
    untouched = sum(np.array_equal(np.asarray(ra(img, random.Random(s))), np.asarray(img)) for s in range(200))
    assert 70 < untouched < 130


# -- random erasing ---------------------------------------------------------------------------------------------------


def test_erase_box_sizes():
    rng = random.Random(0)
    fractions = []
    for _ in range(300):
        top, left, h, w = erase_box(224, 224, rng)
        assert 0 <= top and top + h <= 224 and 0 <= left and left + w <= 224
        fractions.append(h * w / 224 ** 2)
        assert 0.02 * 0.9 <= fractions[-1] <= 1 / 3 * 1.1
        assert 0.3 * 0.9 <= h / w <= 1 / 0.3 * 1.1
    assert min(fractions) < 0.05 and max(fractions) > 0.28


def test_random_erasing_fills_one_rectangle_with_noise():
    erased = 0
    for seed in range(40):
        x = RandomErasing(1.0)(torch.zeros(3, 64, 64), random.Random(seed))
        mask = (x != 0).any(0)
        if not mask.any():
            continue
        erased += 1
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert rows[-1] - rows[0] + 1 == h and cols[-1] - cols[0] + 1 == w and mask.sum() == h * w
        assert 0.015 <= h * w / 64 ** 2 <= 0.4
    assert erased >= 35
    noise = RandomErasing(1.0)(torch.zeros(3, 224, 224), random.Random(1))
    values = noise[noise != 0]
    assert abs(values.mean()) < 0.1 and abs(values.std() - 1) < 0.1
    x = torch.zeros(3, 32, 32)
    hits = sum(bool(RandomErasing(0.25)(x.clone(), random.Random(s)).any()) for s in range(400))
    assert 60 < hits < 140


# -- batch mixing -----------------------------------------------------------------------------------------------------


def batch(b=8, c=3, size=16):
    g = torch.Generator().manual_seed(123)
    return torch.randn(b, c, size, size, generator=g), torch.arange(b)


def test_no_mixing_gives_smoothed_one_hot():
    x, y = batch()
    for aug in [AugConfig(mixup=0.0, cutmix=0.0), AugConfig(mix_prob=0.0)]:
        xm, t = mix_batch(x, y, 10, aug, torch.Generator().manual_seed(0))
        assert xm is x
        torch.testing.assert_close(t.sum(1), torch.ones(8))
        torch.testing.assert_close(t.max(1).values, torch.full((8,), 0.9 + 0.1 / 10))
        assert torch.equal(t.argmax(1), y)
    assert torch.equal(smooth_one_hot(y, 10, 0.0), F.one_hot(y, 10).float())


def test_mixup_is_a_convex_combination_with_the_reversed_batch():
    x, y = batch()
    before = x.clone()
    aug = AugConfig(mixup=0.8, cutmix=0.0, label_smoothing=0.0)
    for seed in range(5):
        xm, t = mix_batch(x, y, 10, aug, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(t.sum(1), torch.ones(8))
        lam = t[0, y[0]].item()
        assert 0 <= lam <= 1 and t[0, y[-1]].item() == pytest.approx(1 - lam)
        torch.testing.assert_close(xm, lam * x + (1 - lam) * x.flip(0))
    assert torch.equal(x, before)  # the input batch is not modified


def test_cutmix_pastes_one_rectangle_and_corrects_lam():
    x, y = batch()
    aug = AugConfig(mixup=0.0, cutmix=1.0, label_smoothing=0.1)
    pasted = 0
    for seed in range(10):
        xm, t = mix_batch(x, y, 10, aug, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(t.sum(1), torch.ones(8))
        changed = (xm != x).any(1).any(0)  # (H, W)
        area = int(changed.sum())
        lam = (t[0, y[0]].item() - 0.01) / 0.9  # undo the smoothing
        assert lam == pytest.approx(1 - area / 16 ** 2, abs=1e-5)
        if area:
            pasted += 1
            rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
            assert area == len(rows) * len(cols) == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
            box = (slice(None), slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            assert torch.equal(xm[box], x.flip(0)[box])
    assert pasted >= 5


def test_cutmix_box_is_clipped_to_the_image():
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        top, bottom, left, right = cutmix_box(12, 20, 0.3, g)
        assert 0 <= top <= bottom <= 12 and 0 <= left <= right <= 20


def test_switch_prob_picks_cutmix_or_mixup():
    x, y = batch()

    def is_cutmix(xm):  # CutMix copies values; Mixup blends every pixel
        return bool(((xm == x) | (xm == x.flip(0))).all())

    g = torch.Generator().manual_seed(0)
    kinds = [is_cutmix(mix_batch(x, y, 10, AugConfig(switch_prob=0.5), g)[0]) for _ in range(100)]
    assert 25 < sum(kinds) < 75
    assert all(is_cutmix(mix_batch(x, y, 10, AugConfig(switch_prob=1.0), g)[0]) for _ in range(10))


def test_mixing_is_a_function_of_the_generator_seed():
    x, y = batch()
    a = mix_batch(x, y, 10, AugConfig(), torch.Generator().manual_seed(5))
    b = mix_batch(x, y, 10, AugConfig(), torch.Generator().manual_seed(5))
    c = mix_batch(x, y, 10, AugConfig(), torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("a,b", [(0.8, 0.8), (1.0, 1.0), (2.0, 5.0), (0.1, 0.1)])
def test_sample_beta_moments(a, b):
    g = torch.Generator().manual_seed(0)
    draws = np.array([sample_beta(a, b, g) for _ in range(2000)])
    assert ((0 <= draws) & (draws <= 1)).all()
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(draws.mean() - mean) < 4 * math.sqrt(var / 2000)
    assert abs(draws.var() - var) < 0.15 * var


def test_soft_target_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 5, generator=g), torch.tensor([0, 4, 2, 2, 1, 3])
    torch.testing.assert_close(soft_target_cross_entropy(logits, F.one_hot(y, 5).float()), F.cross_entropy(logits, y))
    torch.testing.assert_close(soft_target_cross_entropy(logits, smooth_one_hot(y, 5, 0.1)),
                               F.cross_entropy(logits, y, label_smoothing=0.1))


def test_to_tensor_matches_reference():
    img = colour_image(9, 7)
    torch.testing.assert_close(to_tensor(img), reference_tensor(img))
