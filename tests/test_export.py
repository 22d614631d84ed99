"""Export: ONNX checked in onnxruntime for every local operator and kind of block, the safetensors round trip
through glit.load_model, and bad files as one-line errors. (``glit run`` writing searched.onnx and
searched.safetensors, and ``glit export --supernet``, are tested on test_run's finished run.)"""

import json
import random

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

import glit
from glit import Arch, Family
from glit.export import load_model, to_onnx, to_safetensors
from glit.genes import LOCAL_OPS
from helpers import block

FAMILY = Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=3, num_classes=5)


def _model(op: str, seed: int = 0) -> glit.Supernet:
    """All-global, all-local and mixed blocks, the local ones running ``op``, with every weight and BatchNorm
    statistic perturbed (a fresh model has constant biases, which would hide a weight exported wrongly)."""
    arch = Arch(FAMILY, (block(3, 2, 4, None, None), block(0, None, 2, 2, 5, op), block(1, 0.5, 6, 1, 3, op)))
    model = glit.build_model(arch, generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    return model.eval()


def _images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, FAMILY.img_size, FAMILY.img_size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("op", list(LOCAL_OPS))
def test_onnx_matches_pytorch_in_onnxruntime_at_any_batch_size(op, tmp_path):
    model, path = _model(op), tmp_path / "m.onnx"
    assert to_onnx(model, path, _images(4)) <= 1e-4
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for n in (1, 3, 7):  # the batch axis is dynamic
        x = _images(n, seed=n)
        got = session.run(None, {"images": x.numpy()})[0]
        with torch.no_grad():
            assert np.abs(got - model(x).numpy()).max() <= 1e-4


def test_an_onnx_export_that_disagrees_is_an_error_and_writes_nothing(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(glit.GlitError, match="not written: onnxruntime's output differs from PyTorch's"):
        to_onnx(_model("conv1d"), path, _images(2), atol=0.0)  # nothing is equal to the last bit on every image
    assert not path.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("op", list(LOCAL_OPS))
def test_safetensors_round_trip_gives_identical_outputs(op, tmp_path):
    model, path = _model(op, seed=2), tmp_path / "m.safetensors"
    beside = to_safetensors(model, path)
    assert beside == tmp_path / "m.json" and Arch.from_json(beside) == model.arch
    loaded = load_model(path)
    assert loaded.arch == model.arch and not loaded.training
    x = _images(5)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert set(loaded.state_dict()) == set(model.state_dict())  # timm-style names, buffers included
    assert "blocks.0.attn.qkv.weight" in loaded.state_dict() and "pos_embed" in loaded.state_dict()


def test_bad_files_are_one_line_errors(tmp_path):
    path = tmp_path / "m.safetensors"
    to_safetensors(_model("conv1d"), path)
    with pytest.raises(glit.GlitError, match="no such file"):
        load_model(tmp_path / "none.safetensors")
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(glit.GlitError, match="t.safetensors: not a readable safetensors file"):
        load_model(truncated)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(glit.GlitError, match="not a readable safetensors file"):
        load_model(tmp_path / "garbage.safetensors")
    # Weights of another architecture under the metadata of this one: a mismatch, named.
    other = tmp_path / "o.safetensors"
    arch = glit.space_preset("demo", 2).sample(random.Random(0))
    to_safetensors(glit.build_model(arch), other)
    from safetensors.torch import load_file, save_file

    save_file(load_file(other), tmp_path / "mixed.safetensors", metadata={"arch": json.dumps(_model("conv1d")
                                                                                           .arch.to_dict())})
    with pytest.raises(glit.GlitError, match="mixed.safetensors: the checkpoint's weights do not fit"):
        load_model(tmp_path / "mixed.safetensors")
    save_file(load_file(other), tmp_path / "bare.safetensors")  # no metadata, no JSON beside
    with pytest.raises(glit.GlitError, match="no architecture in its metadata and no bare.json beside it"):
        load_model(tmp_path / "bare.safetensors")
