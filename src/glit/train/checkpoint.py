"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint holds everything a run needs to resume with no other file: model, optimiser and grad-scaler state,
the EMA weights, RNG states, the epoch, the metrics so far, the resolved config, and the space or architecture.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from glit.errors import GlitError
from glit.files import write_atomic


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: a crash never leaves a half-written file,
    and a full disk is a one-line error that keeps the last good checkpoint."""
    write_atomic(path, lambda f: torch.save(state, f))


KINDS = {"model": "a trained model (written by glit train)",
         "supernet": "a supernet (written by glit train-supernet)"}


def expect_kind(state: dict, kind: str, path: str | Path, then: str) -> None:
    """A one-line error unless ``state`` is a checkpoint of ``kind``: what the file is, and what to pass instead."""
    if state.get("kind") != kind:
        found = KINDS.get(state.get("kind"), f"a checkpoint of unknown kind {state.get('kind')!r}")
        raise GlitError(f"{path}: {found}, not {KINDS[kind].split(' (')[0]}; {then}")


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GlitError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickles before failing on them
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - garbage makes the weights-only unpickler raise anything (KeyError...)
        known = isinstance(err, (pickle.UnpicklingError, OSError))
        reason = err.__class__.__name__ if known else "truncated or corrupt"
        raise GlitError(f"{path}: not a readable glit checkpoint ({reason})") from None
    if not isinstance(state, dict) or "kind" not in state:
        raise GlitError(f"{path}: not a glit checkpoint (no 'kind' entry)")
    return state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_weights(model: torch.nn.Module, ckpt: dict, file: str | Path, key: str = "model") -> None:
    """Load ``ckpt[key]`` into ``model``: a checkpoint whose tensors are missing, unexpected or of other shapes is
    a one-line error that names the file and the first such tensor."""
    state = ckpt.get(key)
    if not isinstance(state, dict):
        raise GlitError(f"{file}: the checkpoint holds no {key!r} weights")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and (not isinstance(state[k], torch.Tensor)
                                                    or state[k].shape != expected[k].shape)]
    if missing or unexpected or wrong:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}" if unexpected \
            else f"tensor {wrong[0]!r} has another shape"
        raise GlitError(f"{file}: the checkpoint's weights do not fit its architecture ({what}; "
                        f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} of another shape)")
    model.load_state_dict(state)
