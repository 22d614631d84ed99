"""The version string that results record: the package version, and the git commit when glit runs from a checkout
(``0.1.0+g1a2b3c4``, with ``.dirty`` when the checkout has uncommitted changes)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def version_string() -> str:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return __version__
    if commit.returncode != 0:
        return __version__
    return f"{__version__}+g{commit.stdout.strip()}{'.dirty' if dirty.stdout.strip() else ''}"
