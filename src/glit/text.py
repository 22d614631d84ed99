"""Numbers as a person reads them, for the terminal and the report."""

from __future__ import annotations

import math


def fmt_seconds(s) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``—`` for a missing or non-finite value."""
    if not isinstance(s, int | float) or not math.isfinite(s):
        return "—"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
