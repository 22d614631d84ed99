"""The ImageNet presets end to end on CPU (issue 14): ``glit run tiny`` on a small 224-px ImageFolder tree, through
the whole DeiT recipe (RandAugment, Mixup/CutMix, random erasing, repeated augmentation, bf16 autocast, EMA), with
overrides that only shorten it, so that a user's first GPU hour is not where the recipe breaks. ``small``'s family
(D 384, 6 heads) gets one retraining of its DeiT-style architecture through the same recipe.
"""

from __future__ import annotations

import json

import pytest

from glit.config import load_config
from helpers import load_ckpt, read_metrics, run_glit, write_image_folder

# Shorter, never different: one epoch, small batches, a tiny search; the augmentation and precision stay the
# preset's own (checked below).
SHORT = ("--set", "data.workers=0", "--set", "data.search_size=6", "--set", "supernet.optim.epochs=1",
         "--set", "supernet.optim.batch_size=8", "--set", "supernet.eval_archs=1", "--set", "supernet.bn_batches=1",
         "--set", "train.epochs=1", "--set", "train.batch_size=8", "--set", "train.ema=0.99",
         "--set", "search.population=2", "--set", "search.generations=1", "--set", "search.parents=1",
         "--set", "search.mutations=1", "--set", "search.crossovers=1", "--set", "search.topk=1",
         "--set", "search.bn_batches=1", "--set", "search.batch_size=8")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("imagenet-like") / "tree", classes=(0, 1, 2),
                              train_per_class=8, val_per_class=2)


def test_the_imagenet_recipe_is_the_full_deit_recipe():
    cfg = load_config("tiny")
    assert cfg.aug.randaugment and cfg.aug.mixup > 0 and cfg.aug.cutmix > 0 and cfg.aug.erasing > 0
    assert cfg.aug.repeated_aug == 3 and cfg.aug.crop == "rrc"
    assert cfg.train.amp == cfg.supernet.optim.amp == "bf16"


def test_glit_run_tiny_end_to_end_on_224_px_images(tree, tmp_path):
    out = tmp_path / "run"
    done = run_glit("run", "tiny", "--data", tree, "--out", out, *SHORT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for name in ("searched", "baseline", "random"):
        ckpt = load_ckpt(out / f"{7 + ('searched', 'baseline', 'random').index(name)}-{name}" / "checkpoint.pt")
        cfg = ckpt["config"]
        assert cfg["aug"]["randaugment"] and cfg["aug"]["mixup"] > 0 and cfg["aug"]["erasing"] > 0
        assert cfg["train"]["amp"] == "bf16" and cfg["train"]["ema"] == 0.99 and ckpt.get("ema") is not None
        folder = out / f"{7 + ('searched', 'baseline', 'random').index(name)}-{name}"
        assert summary[name]["top1"] == json.loads((folder / "result.json").read_text())["top1"]  # what was measured
    assert summary["baseline"]["arch"]["family"]["img_size"] == 224
    assert (out / "report.html").is_file()
    assert all(row["images_per_s"] > 0 for row in read_metrics(out / "1-supernet"))


def test_small_family_retrains_through_the_same_recipe(tree, tmp_path):
    done = run_glit("train", "--preset", "small", "--arch", "deit-small", "--data", tree, "--out", tmp_path / "s",
                    *SHORT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = read_metrics(tmp_path / "s")
    assert len(metrics) == 1 and 0 <= metrics[0]["top1"] <= 100
