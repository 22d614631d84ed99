"""The speed options of a training recipe (``fused``, ``compile``, ``tf32``), where a CPU can run them."""

from __future__ import annotations

import json

import pytest
import torch

from glit import Arch
from glit.config import load_config
from glit.errors import GlitError
from glit.nn import build_model
from glit.space import Family
from helpers import block, demo_arch_file, read_metrics, run_glit

FAST = ("--set", "train.batch_size=64", "--set", "data.workers=0")


def losses_off_and_on(tmp_path, key: str, epochs: int) -> dict[str, list[float]]:
    """The per-epoch losses of one demo training with ``key`` false and with it true (each trained above chance)."""
    arch = demo_arch_file(tmp_path / "a.json")
    losses = {}
    for value in ("false", "true"):
        out = tmp_path / value
        proc = run_glit("train", "--preset", "demo", "--arch", arch, "--epochs", str(epochs), *FAST,
                        "--set", f"{key}={value}", "--out", out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        losses[value] = [m["loss"] for m in read_metrics(out)]
        assert len(losses[value]) == epochs and json.loads((out / "result.json").read_text())["top1"] > 10
    return losses


def test_fused_adamw_trains_like_the_plain_one(tmp_path):
    """torch's fused AdamW kernel: the same run within float rounding (losses within 1e-3 after two epochs)."""
    losses = losses_off_and_on(tmp_path, "train.fused", epochs=2)
    assert all(abs(a - b) < 1e-3 for a, b in zip(losses["false"], losses["true"]))


def test_a_compiled_model_computes_what_the_eager_one_does():
    """``train.compile`` calls ``model.compile()`` (in place: checkpoints keep the plain keys). A one-block model,
    so that inductor's compile stays short on a CPU."""
    fam = Family(img_size=8, patch_size=4, embed_dim=16, num_heads=2, depth=1, num_classes=3)
    model = build_model(Arch(fam, (block(1, 1.0, 2.0, 1.0, 3),)), generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    eager = model(x)
    keys = list(model.state_dict())
    model.compile()
    compiled = model(x)
    compiled.sum().backward()
    assert torch.allclose(eager, compiled, atol=1e-5)
    assert list(model.state_dict()) == keys
    assert all(p.grad is not None for p in model.parameters())


def test_a_supernet_is_never_compiled():
    with pytest.raises(GlitError, match=r"supernet\.optim\.compile.*recompile"):
        load_config("cifar", overrides=["supernet.optim.compile=true"])


def test_tf32_changes_nothing_on_a_cpu(tmp_path):
    """``train.tf32`` allows TF32 matmuls on a CUDA GPU only (bench/gpu.sh measures it there): on a CPU the run is
    bit for bit the one without it."""
    losses = losses_off_and_on(tmp_path, "train.tf32", epochs=1)
    assert losses["true"] == losses["false"]
