"""TensorBoard scalars of one stage folder (``OUT/tensorboard``), written when ``log.tensorboard`` is on, by rank 0.

``tensorboard --logdir RUN`` then shows every stage of a ``glit run`` side by side (each stage folder is a run of
its own there). The points mirror what the folder's own records hold (``metrics.jsonl``, the search state), and a
stage that continues after a kill writes them again from those records behind a purge marker: TensorBoard's reader
drops every earlier point from step 1 on, so a resumed stage shows each step once, and none that its records lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from glit.errors import GlitError

FOLDER = "tensorboard"


class Board:
    """``add(step, {name: value})``; numbers only, NaN and None skipped. A no-op when ``enabled`` is false."""

    def __init__(self, out: Path, enabled: bool, history: Iterable[tuple[int, dict]] = ()):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GlitError("log.tensorboard needs the tensorboard package: pip install 'glit[tensorboard]' (or "
                            "pip install tensorboard)") from None
        self.writer = SummaryWriter(str(out / FOLDER), purge_step=1)  # a resumed stage rewrites its history
        for step, scalars in history:
            self.add(step, scalars, flush=False)
        self.writer.flush()

    def add(self, step: int, scalars: dict, flush: bool = True) -> None:
        if self.writer is None:
            return
        for name, value in scalars.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                self.writer.add_scalar(name, value, step)
        if flush:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
