"""``glit export``: a model checkpoint, or one path of a supernet, to ONNX or safetensors (see ``glit.export``)."""

from __future__ import annotations

from pathlib import Path

from glit.data.build import SharedData, eval_loader
from glit.errors import GlitError
from glit.export import to_onnx, to_safetensors
from glit.recipes.evaluate import load_trained
from glit.recipes.search import supernet_checkpoint
from glit.space import Arch

FORMATS = ("onnx", "safetensors")


def export(out: str | Path, fmt: str, checkpoint: str | Path | None = None, supernet: str | Path | None = None,
           arch: Arch | None = None, data_dir: str | None = None, shared: SharedData | None = None) -> dict:
    """Export ``checkpoint`` (a ``glit train`` checkpoint), or ``arch``'s path of ``supernet`` (a ``glit
    train-supernet`` folder or checkpoint, its BatchNorm recalibrated as the search does), to ``out``. The ONNX check
    runs on a batch of 8 test images of the model's data (or of ``data_dir``)."""
    if fmt not in FORMATS:
        raise GlitError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if (checkpoint is None) == (supernet is None):
        raise GlitError("give --checkpoint FILE, or --supernet DIR with --arch FILE")
    if supernet is not None and arch is None:
        raise GlitError("--supernet needs --arch FILE: the path to export")
    if checkpoint is not None and arch is not None:
        raise GlitError("--arch is for --supernet; a model checkpoint holds its own architecture")
    source = checkpoint if checkpoint is not None else supernet_checkpoint(supernet)[1]
    t = load_trained(source, data_dir, arch, shared=shared)
    model = (t.model if t.path is None else t.model.extract(t.path)).eval()
    result = {"out": str(out), "format": fmt, "arch": t.arch.to_dict(), "source": str(source)}
    if fmt == "onnx":
        images, _ = next(iter(eval_loader(t.cfg, t.test, t.arch.family.img_size, 8)))
        result["max_abs_diff"] = to_onnx(model, out, images)
    else:
        result["arch_file"] = str(to_safetensors(model, out))
    return result
