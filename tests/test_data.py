"""Data (SPEC 3.2): the epoch sampler's contract across ranks, and ImageFolder trees through the real CLI: a small
mixed tree trains, and each kind of bad data is a one-line error (exit 2) that names the path."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from glit.data.sampler import EpochSampler
from helpers import assert_one_line_error, demo_arch_file, load_ckpt, read_metrics, run_glit, write_image_folder

# -- the epoch sampler -------------------------------------------------------------------------------------------------


def keys_of(n, world, epoch=0, **kwargs) -> list[list[tuple[int, str]]]:
    """Each rank's (index, seed) keys for one epoch."""
    ranks = []
    for rank in range(world):
        sampler = EpochSampler(n, rank=rank, world=world, **{"seed": 0, **kwargs})
        sampler.set_epoch(epoch)
        ranks.append(list(sampler))
    return ranks


def interleave(ranks: list[list]) -> list:
    """Rank r holds positions r, r + world, ... of the global order: put them back in order."""
    out = []
    for i in range(max(map(len, ranks))):
        out += [r[i] for r in ranks if i < len(r)]
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), world=st.integers(1, 5), epoch=st.integers(0, 3), seed=st.integers(0, 3))
def test_sampler_ranks_split_one_global_order(n, world, epoch, seed):
    ranks = keys_of(n, world, epoch, seed=seed)
    assert len({len(r) for r in ranks}) == 1  # every rank takes the same number of steps
    assert len(ranks[0]) == len(EpochSampler(n, seed=seed, rank=0, world=world))
    merged = interleave(ranks)
    assert len(merged) == -(-n // world) * world
    assert len({key[1] for key in merged}) == len(merged)  # one augmentation seed per position: disjoint ranks
    assert {key[0] for key in merged} == set(range(n))  # covers every index; the rest is wrap-around padding
    assert Counter(key[0] for key in merged).most_common(1)[0][1] <= 2 or n < world
    # The global order is that of one process: ranks see the same (index, seed) keys as a 1-process run.
    alone = keys_of(n, 1, epoch, seed=seed)[0]
    assert merged[:n] == alone
    # Every rank computes the same global order: a sampler rebuilt on another "machine" agrees.
    assert keys_of(n, world, epoch, seed=seed) == ranks


def test_sampler_order_depends_on_seed_and_epoch_only():
    base = keys_of(50, 2, epoch=1, seed=7)
    assert keys_of(50, 2, epoch=1, seed=7) == base
    assert [k[0] for k in interleave(keys_of(50, 2, epoch=2, seed=7))] != [k[0] for k in interleave(base)]
    assert [k[0] for k in interleave(keys_of(50, 2, epoch=1, seed=8))] != [k[0] for k in interleave(base)]
    assert sorted(k[0] for k in interleave(base)) == list(range(50))
    unshuffled = interleave(keys_of(50, 2, shuffle=False))
    assert [k[0] for k in unshuffled] == list(range(50))


@pytest.mark.parametrize("n, world, repeats", [(60, 3, 3), (64, 2, 2), (30, 4, 3), (17, 1, 3)])
def test_sampler_repeated_augmentation(n, world, repeats):
    """Each image appears `repeats` times in a row in the global order, each copy with its own seed, so copies land
    on different ranks; the epoch keeps its usual length."""
    ranks = keys_of(n, world, epoch=3, repeats=repeats)
    merged = interleave(ranks)
    assert len(merged) == -(-n // world) * world
    counts = Counter(index for index, _ in merged)
    full = [i for i, c in counts.items() if c == repeats]
    assert len(full) >= len(merged) // repeats - 1  # all but the last (cut) image appear `repeats` times
    assert max(counts.values()) == repeats
    assert len({seed for _, seed in merged}) == len(merged)
    for start in range(0, len(merged) - repeats + 1, repeats):
        assert len({index for index, _ in merged[start:start + repeats]}) == 1
    if world == repeats:  # then the copies of an image go one to each rank
        for r in ranks:
            assert len({index for index, _ in r}) == len(r)


@pytest.mark.parametrize("n, world", [(10, 3), (7, 2), (2, 4), (9, 1), (12, 4)])
def test_eval_sampler_covers_every_index_exactly_once(n, world):
    ranks = keys_of(n, world, shuffle=False, pad=False)
    assert [len(r) for r in ranks] == [len(EpochSampler(n, seed=0, rank=r, world=world, pad=False))
                                        for r in range(world)]
    assert sorted(index for r in ranks for index, _ in r) == list(range(n))


# -- ImageFolder trees through the CLI ---------------------------------------------------------------------------------

TREE_TRAIN = ("--epochs", "1", "--set", "train.batch_size=8", "--set", "data.search_size=4")


def train_on(tree: Path, tmp_path: Path, *extra) -> object:
    arch = demo_arch_file(tmp_path / "arch.json")
    return run_glit("train", "--preset", "demo", "--arch", arch, "--data", tree, *TREE_TRAIN, *extra,
                    "--out", tmp_path / "out")


def test_a_small_image_folder_trains_and_sets_the_number_of_classes(tmp_path):
    tree = write_image_folder(tmp_path / "tree", classes=(3, 5, 8))
    with Image.open(next(tree.rglob("*.png"))) as png, Image.open(next(tree.rglob("*.jpg"))) as jpg:
        assert (png.mode, png.size, jpg.mode, jpg.size) == ("L", (12, 12), "RGB", (8, 8))
    done = train_on(tree, tmp_path)
    assert done.returncode == 0, done.stderr
    ckpt = load_ckpt(tmp_path / "out" / "checkpoint.pt")
    assert ckpt["arch"]["family"]["num_classes"] == 3  # from the tree, not the architecture file's 10
    assert ckpt["model"]["head.weight"].shape == (3, 48)
    assert ckpt["split"]["classes"] == ["digit_3", "digit_5", "digit_8"]
    (line,) = read_metrics(tmp_path / "out")
    assert line["images"] == 12  # the val split: 3 classes x 4 images
    assert torch.isfinite(torch.tensor(line["loss"]))


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    assert_one_line_error(train_on(missing, tmp_path), str(missing))


def test_missing_train_split(tmp_path):
    tree = write_image_folder(tmp_path / "tree")
    shutil.rmtree(tree / "train")
    assert_one_line_error(train_on(tree, tmp_path), str(tree / "train"))


def test_empty_class_folder(tmp_path):
    tree = write_image_folder(tmp_path / "tree")
    empty = tree / "train" / "digit_1"
    for f in empty.iterdir():
        f.unlink()
    (empty / "notes.txt").write_text("not an image")
    assert_one_line_error(train_on(tree, tmp_path), str(empty))


def test_class_sets_that_differ_between_splits(tmp_path):
    tree = write_image_folder(tmp_path / "tree")
    (tree / "val" / "digit_2").rename(tree / "val" / "digit_7")
    line = assert_one_line_error(train_on(tree, tmp_path), str(tree))
    assert "digit_2" in line and "digit_7" in line


# Quoted: YAML reads a bare yes/no as a boolean (see test_data_cache_accepts_its_documented_values).
UP_FRONT = ["--set", "data.cache=yes"]
IN_A_WORKER = ["--set", "data.cache=no", "--set", "data.workers=2"]


@pytest.mark.parametrize("cache", [UP_FRONT, IN_A_WORKER], ids=["decoded-up-front", "decoded-in-a-worker"])
def test_unreadable_image(tmp_path, cache):
    tree = write_image_folder(tmp_path / "tree")
    victim = sorted((tree / "train" / "digit_2").iterdir())[-1]
    victim.unlink()  # keep 24 training images: 3 full batches of 8, so every image is loaded in the epoch
    bad = tree / "train" / "digit_2" / "broken.jpg"
    bad.write_bytes(b"\x00garbage, not a JPEG\xff" * 20)
    assert_one_line_error(train_on(tree, tmp_path, *cache), str(bad))


@pytest.mark.parametrize("value, decoded", [("yes", True), ("no", False), ("auto", True)])
def test_data_cache_accepts_its_documented_values(value, decoded, tmp_path):
    """``--set data.cache=yes`` (a bare yes that YAML would read as true) decodes every image up front, ``no`` leaves
    paths for the loader's workers, and ``auto`` decodes a tree this small."""
    from glit.config import load_config
    from glit.data.datasets import image_folder

    cfg = load_config("demo", None, [f"data.cache={value}"])
    train, test = image_folder(write_image_folder(tmp_path / "tree"), cfg.data.cache)
    for split in (train, test):
        assert all(isinstance(item, Path) != decoded for item in split.items)
    if decoded:
        assert all(str(item.dtype) == "uint8" and item.ndim == 3 for item in train.items)


def test_fit_search_and_unused_partition_the_training_set():
    from glit.config import load_config
    from glit.data.build import load_data

    cfg = load_config("demo", None, ["data.train_subset=300", "data.search_size=44"])
    data = load_data(cfg)
    whole = load_data(load_config("demo", None, ["data.search_size=44"]))
    ids = {name: [id(x) for x in getattr(data, name).items] for name in ("fit", "search", "unused", "full")}
    assert (len(ids["fit"]), len(ids["search"])) == (256, 44)
    assert len(ids["unused"]) == len(whole.full) - 300
    assert not set(ids["fit"]) & set(ids["search"]) and not set(ids["full"]) & set(ids["unused"])
    assert set(ids["full"]) == set(ids["fit"]) | set(ids["search"])
    assert len(whole.unused) == 0


def test_16_bit_and_32_bit_images_are_scaled_to_8_bits_not_clipped(tmp_path):
    """A 16-bit PNG (opened as I;16) spans 0..65535: it must come out as 0..255, not saturated to white."""
    import numpy as np

    from glit.data.datasets import load_image

    ramp = (np.arange(16 * 16).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535 in 256 steps
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert Image.open(tmp_path / "ramp16.png").mode.startswith("I")
    rgb = np.asarray(load_image(tmp_path / "ramp16.png"))
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 16, 3)
    assert np.array_equal(rgb[..., 0], np.arange(256).reshape(16, 16))  # 257 * v -> v exactly
    floats = Image.fromarray(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), mode="F")
    floats.save(tmp_path / "f.tiff")
    scaled = np.asarray(load_image(tmp_path / "f.tiff"))[..., 0]
    assert scaled.min() == 0 and scaled.max() == 255  # its own range, stretched


def test_hidden_folders_and_files_are_not_classes(tmp_path):
    from glit.data.datasets import image_folder

    root = write_image_folder(tmp_path / "tree")
    for split in ("train", "val"):
        (root / split / ".ipynb_checkpoints").mkdir()
        (root / split / "digit_0" / ".DS_Store.png").write_bytes(b"junk")
    train, test = image_folder(root, cache="no")
    assert train.classes == ["digit_0", "digit_1", "digit_2"] and len(train) == 24 and len(test) == 12
