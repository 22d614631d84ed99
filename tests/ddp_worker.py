"""Run the glit CLI (``python tests/ddp_worker.py train ...``, alone or under torchrun) and let every rank save its
own trained weights.

A run saves only rank 0's checkpoint, so the tests cannot see the other ranks' weights. This script wraps the
``fit`` that the recipes call: after training, each rank writes ``model.state_dict()`` to
``$GLIT_TEST_WEIGHTS/rank{RANK}.pt``. Everything else is the unmodified command line (``glit.cli.main``).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch

from glit.cli import main


def save_every_rank(module_name: str, folder: Path) -> None:
    module = importlib.import_module(module_name)
    fit = module.fit

    def fit_and_save(model, *args, **kwargs):
        history = fit(model, *args, **kwargs)
        torch.save(model.state_dict(), folder / f"rank{os.environ.get('RANK', '0')}.pt")
        return history

    module.fit = fit_and_save


if __name__ == "__main__":
    folder = Path(os.environ["GLIT_TEST_WEIGHTS"])
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("glit.recipes.train", "glit.recipes.train_supernet"):
        save_every_rank(name, folder)
    sys.exit(main(sys.argv[1:]))
