"""A trained model out of glit: ONNX for any runtime, safetensors for PyTorch, and ``load_model`` to read the latter.

- ``to_onnx(model, path, images)`` exports a standalone model with a dynamic batch axis (input ``images``, output
  ``logits``) and checks it in onnxruntime against PyTorch on ``images`` (a batch of real images) and on its first
  image alone: a maximum absolute difference above ``atol`` (1e-4 in fp32) is an error, and the file is written only
  once it passed. It uses torch's TorchScript-based exporter (``dynamo=False``), which needs only the ``onnx``
  package; every glit layer maps to standard ONNX operators (opset 17).
- ``to_safetensors(model, path)`` writes the weights under the state-dict names (timm's ViT names, see
  ``glit.nn.model``) with the architecture JSON in the file's metadata, and the same JSON beside it
  (``model.json`` for ``model.safetensors``) for people and ``glit profile``.
- ``load_model(path)`` rebuilds the model from a safetensors file alone, without pickle: the architecture from the
  metadata (or the JSON beside it), the weights checked name by name and shape by shape.

onnx and onnxruntime are the ``export`` extra (``pip install glit[export]``); safetensors is a core dependency.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from glit.errors import GlitError
from glit.files import write_atomic, write_text_atomic
from glit.nn import Supernet, build_model
from glit.space import Arch
from glit.train.checkpoint import load_weights

ONNX_ATOL = 1e-4
METADATA_FORMAT = "glit-model"


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def to_onnx(model: Supernet, path: str | Path, images: torch.Tensor, atol: float = ONNX_ATOL) -> float:
    """Export ``model`` (a standalone model) to ONNX at ``path``; return the largest difference from PyTorch."""
    if not onnx_available():
        raise GlitError("ONNX export needs onnx and onnxruntime: pip install 'glit[export]' (or onnx onnxruntime)")
    import onnxruntime

    model = model.eval().float().cpu()
    images = images.float().cpu()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(model, (images,), buf, dynamo=False, opset_version=17, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    session = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for batch in (images, images[:1]):  # the exported batch size, and another one: the batch axis is dynamic
            got = torch.from_numpy(session.run(None, {"images": batch.numpy()})[0])
            worst = max(worst, (got - model(batch)).abs().max().item())
    if not worst <= atol:
        raise GlitError(f"{path}: not written: onnxruntime's output differs from PyTorch's by {worst:.2e} "
                        f"(more than {atol:g})")
    write_atomic(path, lambda f: f.write(buf.getvalue()))
    return worst


def to_safetensors(model: Supernet, path: str | Path) -> Path:
    """Write ``model``'s weights and architecture to ``path`` (and the architecture JSON beside it); return the
    JSON's path."""
    from safetensors.torch import save

    arch = model.arch
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": METADATA_FORMAT, "arch": arch.to_json(indent=None)}
    write_atomic(path, lambda f: f.write(save(tensors, metadata)))
    beside = Path(path).with_suffix(".json")
    write_text_atomic(beside, arch.to_json() + "\n")
    return beside


def load_model(path: str | Path) -> Supernet:
    """The standalone model in a safetensors file written by ``to_safetensors`` (or ``glit export``), in eval mode."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GlitError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except (SafetensorError, OSError, ValueError) as err:
        raise GlitError(f"{path}: not a readable safetensors file ({str(err).splitlines()[0][:80]})") from None
    text = metadata.get("arch")
    if text is None:
        beside = path.with_suffix(".json")
        if not beside.is_file():
            raise GlitError(f"{path}: no architecture in its metadata and no {beside.name} beside it")
        text = beside.read_text(encoding="utf-8")
    try:
        arch = Arch.from_dict(json.loads(text), f"{path}: arch")
    except json.JSONDecodeError:
        raise GlitError(f"{path}: its architecture metadata is not JSON") from None
    model = build_model(arch)
    load_weights(model, {"model": tensors}, path)
    return model.eval()
