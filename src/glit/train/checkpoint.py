"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint holds everything a run needs to resume with no other file: model, optimiser and grad-scaler state,
the EMA weights, RNG states, the epoch, the metrics so far, the resolved config, and the space or architecture.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from glit.errors import GlitError


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GlitError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickles before failing on them
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        reason = "truncated or corrupt" if isinstance(err, (EOFError, RuntimeError)) else err.__class__.__name__
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
