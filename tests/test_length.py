"""Training length sized by the data (``images``, ``min_epochs``, ``max_epochs``; glit.train.optim.sized)."""

import json

import pytest

from glit.config import OptimConfig, load_config, updated
from glit.errors import GlitError
from glit.train.optim import lr_at, sized
from helpers import assert_one_line_error, demo_arch_file, run_glit, write_image_folder

CIFAR_LIKE = OptimConfig(epochs=8, warmup_epochs=1, images=160_000, max_epochs=200)


def test_a_ten_times_smaller_set_gets_ten_times_the_epochs_within_the_bounds():
    assert sized(CIFAR_LIKE, 20_000).epochs == 8  # the reference size: the preset's epochs
    small = sized(CIFAR_LIKE, 2_000)
    assert small.epochs == 80 and small.warmup_epochs == 10  # warm-up covers the same 20,000 images
    assert sized(CIFAR_LIKE, 200).epochs == 200  # max_epochs
    assert sized(CIFAR_LIKE, 1_281_167).epochs == 1  # min_epochs: a large set is not trained for days
    assert sized(OptimConfig(epochs=8), 2_000).epochs == 8  # without images: the epochs as given
    with pytest.raises(GlitError, match="min_epochs"):
        sized(OptimConfig(images=100, min_epochs=5, max_epochs=2), 10)


def test_the_schedule_covers_the_same_images_whatever_the_size():
    """lr after the same number of images seen is the same on a 20k set and a 2k set (batch 100)."""
    big, small = sized(CIFAR_LIKE, 20_000), sized(CIFAR_LIKE, 2_000)
    for images in (0, 10_000, 40_000, 100_000, 159_900):
        assert lr_at(images // 100, 200, big) == pytest.approx(lr_at(images // 100, 20, small))


def test_glit_train_prints_and_trains_the_derived_epochs(tmp_path):
    data = write_image_folder(tmp_path / "tree", train_per_class=8)  # 24 training images
    out = tmp_path / "out"
    proc = run_glit("train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "a.json"), "--data", data,
                    "--out", out, "--set", "train.batch_size=8", "--set", "train.images=120",
                    "--set", "train.epochs=2", "--set", "data.search_size=4", "--set", "data.workers=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 24 training images: 5 epochs (120 images in all, sized to this data) of 3 steps" in proc.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
    again = run_glit("train", "--preset", "demo", "--arch", tmp_path / "a.json", "--data", data, "--out", out,
                     "--resume", "--set", "train.batch_size=8", "--set", "train.images=120", "--set", "train.epochs=2",
                     "--set", "data.search_size=4", "--set", "data.workers=0")
    assert again.returncode == 0 and "epoch" not in again.stdout.replace("epochs", "")  # finished: nothing trained
    assert json.loads((out / "result.json").read_text())["epochs"] == 5


def test_a_bad_length_is_a_one_line_error(tmp_path):
    proc = run_glit("train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "a.json"), "--out",
                    tmp_path / "out", "--set", "train.images=100", "--set", "train.min_epochs=0")
    assert_one_line_error(proc, "min_epochs")


@pytest.mark.parametrize("preset, train_images, fit_images", [("demo", 1438, 1138), ("cifar", 20_000, 19_000),
                                                              ("tiny", 1_281_167, 1_231_167)])
def test_each_preset_trains_its_stated_epochs_on_its_reference_data(preset, train_images, fit_images):
    cfg = load_config(preset)
    assert cfg.train.images is not None and cfg.supernet.optim.images is not None
    assert sized(cfg.train, train_images).epochs == cfg.train.epochs
    assert sized(cfg.supernet.optim, fit_images).epochs == cfg.supernet.optim.epochs
    small = sized(cfg.train, train_images // 10).epochs
    assert small == min(10 * cfg.train.epochs, cfg.train.max_epochs)


def test_setting_epochs_alone_means_exactly_that_many_epochs(tmp_path):
    assert load_config("cifar", overrides=["train.epochs=3"]).train.images is None
    assert load_config("cifar", overrides=["supernet.optim.epochs=2"]).supernet.optim.images is None
    assert load_config("cifar", overrides=["supernet.optim.epochs=2"]).train.images == 160_000  # the other recipe kept
    both = load_config("cifar", overrides=["train.images=500", "train.epochs=3"]).train
    assert (both.images, both.epochs) == (500, 3)  # both given: images rules, epochs is the reference length
    assert updated(load_config("demo"), {"train.epochs": 5}).train.images is None
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 4\n")
    assert load_config("cifar", file=tmp_path / "c.yaml").train.images is None
    saved = tmp_path / "saved.yaml"
    saved.write_text("train:\n  epochs: 8\n  images: 160000\n")  # a run's config.yaml states both
    assert load_config("cifar", file=saved).train.images == 160_000


def test_every_shipped_recipe_file_belongs_to_a_preset_and_loads():
    """The presets' recipes are YAML files in the package (glit/configs): each is some preset's, and each preset's
    loads and validates."""
    from importlib import resources

    from glit.config import RECIPES, run_preset, validate
    from glit.presets import SPACES

    shipped = {f.name.removesuffix(".yaml") for f in (resources.files("glit") / "configs").iterdir()
               if f.name.endswith(".yaml")}
    assert shipped == {RECIPES.get(name, name) for name in SPACES}
    for name in SPACES:
        assert validate(run_preset(name)).preset == name
