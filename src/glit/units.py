"""Numbers with units, read and written the one way every command does: counts (``1.3G``, ``500M``, ``2e6``) and
times (``4ms``, ``0.5s``, ``250us``). Plain Python; config and search both read budgets through here.
"""

from __future__ import annotations

import math

from glit.errors import GlitError

COUNT_UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
TIME_UNITS = (("ms", 1.0), ("us", 1e-3), ("s", 1e3))  # to milliseconds; "ms" and "us" before "s"


def parse_count(text: str | float | int | None, what: str = "value") -> float:
    """``1.3G``, ``1300M``, ``5e6`` or ``inf`` -> a number; ``None`` stays ``math.inf`` (no limit)."""
    if text is None:
        return math.inf
    if isinstance(text, bool):
        raise GlitError(f"{what}: expected a number such as 1.3G, 500M or 2e6, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().upper()
        scale = COUNT_UNITS.get(s[-1:], 1.0)
        try:
            value = float(s[:-1] if s[-1:] in COUNT_UNITS else s) * scale
        except ValueError:
            raise GlitError(f"{what}: expected a number such as 1.3G, 500M or 2e6, got {text!r}") from None
    if math.isnan(value) or value <= 0:
        raise GlitError(f"{what}: must be positive, got {text!r}")
    return value


def format_count(n: float) -> str:
    """A count the way a user types one: ``1.594 M``, ``1 K``, ``950``, ``inf`` (four significant digits)."""
    if not math.isfinite(n):
        return str(n)
    for unit, scale in sorted(COUNT_UNITS.items(), key=lambda u: -u[1]):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.4g}"


def parse_ms(text: str | float | int, what: str = "search.max_latency") -> float:
    """``4ms``, ``0.5s``, ``250us`` or a bare number of milliseconds -> milliseconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        unit, scale = next(((u, f) for u, f in TIME_UNITS if s.endswith(u)), ("", 1.0))
        try:
            value = float(s[:len(s) - len(unit)]) * scale
        except ValueError:
            raise GlitError(f"{what}: expected a time such as 4ms, 0.5s or 250us, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise GlitError(f"{what}: must be a positive time, got {text!r}")
    return value
