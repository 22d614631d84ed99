"""The real CIFAR-10 tree (../shared/data/cifar10-jpg.tar.gz, or $GLIT_DATA_DIR) through the ImageFolder path.
Skips, with the reason, where the archive is absent."""

import os
import tarfile
from pathlib import Path

import pytest

from helpers import load_ckpt, read_metrics, run_glit

ARCHIVE = Path(os.environ.get("GLIT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / \
    "cifar10-jpg.tar.gz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    if not ARCHIVE.is_file():
        pytest.skip(f"CIFAR-10 archive not found at {ARCHIVE} (set GLIT_DATA_DIR to the folder that holds it)")
    root = tmp_path_factory.mktemp("cifar")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(root, filter="data")
    return root / "cifar10-jpg"


def test_the_tree_reads_as_imagefolder(cifar):
    from glit.data.datasets import image_folder

    train, test = image_folder(cifar, cache="no")
    assert train.classes == CLASSES and len(train) == 50_000 and len(test) == 10_000
    assert [train.labels.count(i) for i in range(10)] == [5_000] * 10


@pytest.mark.slow
def test_one_epoch_on_real_cifar_learns_above_chance(cifar, tmp_path):
    out = tmp_path / "deit"
    proc = run_glit("train", "--preset", "cifar", "--arch", "deit-cifar", "--data", cifar, "--epochs", "1",
                    "--set", "data.train_subset=3000", "--set", "data.search_size=200", "--set", "data.cache=no",
                    "--set", "train.warmup_epochs=0", "--out", out, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = read_metrics(out)
    assert line["images"] == 10_000 and line["top1"] > 15  # 10 classes: chance is 10%
    assert load_ckpt(out / "checkpoint.pt")["split"]["classes"] == CLASSES
