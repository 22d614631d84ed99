"""Numbers and sentences as a person reads them, for the terminal and the report (both read them from here)."""

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


def fmt_pct(x) -> str:
    """``54.64``; ``—`` for a missing or non-finite value."""
    return f"{x:.2f}" if isinstance(x, int | float) and math.isfinite(x) else "—"


def incumbent_text(inc: dict) -> str:
    """What the level-2 search did with the level-1 winner (its incumbent)."""
    m = inc.get("margin_points")
    margin = f"{m:.2f}" if isinstance(m, int | float) and math.isfinite(m) else "—"
    if inc.get("kept"):
        return (f"Level 2 kept the level-1 winner's details: it scored {fmt_pct(inc.get('score'))}% on the search "
                f"split, and no level-2 candidate beat that by more than the {margin}-point margin (the best scored "
                f"{fmt_pct(inc.get('best_score'))}%).")
    return (f"Level 2 replaced the level-1 winner's details: the best candidate scored "
            f"{fmt_pct(inc.get('best_score'))}%, more than {margin} points above the level-1 winner's "
            f"{fmt_pct(inc.get('score'))}%.")
