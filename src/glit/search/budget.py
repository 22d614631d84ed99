"""Complexity budgets: an architecture may be scored only if its MACs, params and predicted latency are within
them, checked before it is scored. No torch. The latency is predicted by a measured table
(``glit.search.latency.LatencyTable``, built by ``glit latency build``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from glit.cost import cost, extremes
from glit.errors import GlitError
from glit.search.latency import LatencyTable
from glit.space import Arch, SearchSpace
from glit.units import format_count


@dataclass(frozen=True)
class Budget:
    max_macs: float = math.inf
    max_params: float = math.inf
    convention: str = "exact"
    max_latency_ms: float = math.inf
    latency: LatencyTable | None = field(default=None, compare=False, hash=False)  # needed with max_latency_ms

    def __post_init__(self):
        if math.isfinite(self.max_latency_ms) and self.latency is None:
            raise GlitError("a latency budget needs a latency table: --lut FILE (glit latency build)")

    def __call__(self, arch: Arch) -> bool:
        c = cost(arch, self.convention)
        if c.macs > self.max_macs or c.params > self.max_params:
            return False
        return not math.isfinite(self.max_latency_ms) or self.latency.predict(arch) <= self.max_latency_ms

    def to_dict(self) -> dict:
        """What a run records of its budget: the limits (infinite when unset) and the latency table's source."""
        return {"max_macs": self.max_macs, "max_params": self.max_params, "convention": self.convention,
                "max_latency_ms": self.max_latency_ms, "latency_table": self.latency.where if self.latency else None}

    def describe(self) -> str:
        parts = []
        if math.isfinite(self.max_macs):
            parts.append(f"MACs <= {format_count(self.max_macs)} ({self.convention})")
        if math.isfinite(self.max_params):
            parts.append(f"params <= {format_count(self.max_params)}")
        if math.isfinite(self.max_latency_ms):
            parts.append(f"latency <= {self.max_latency_ms:g} ms (predicted by {self.latency.where})")
        return ", ".join(parts) or "no budget"

    def check_feasible(self, space: SearchSpace) -> None:
        """A one-line error, with the smallest member's MACs and params (or the fastest member's latency), when no
        member can meet the budget."""
        by_macs = cost(extremes(space, "macs", self.convention)[0], self.convention)
        by_params = cost(extremes(space, "params", self.convention)[0], self.convention)
        if by_macs.macs > self.max_macs or by_params.params > self.max_params:
            raise GlitError(f"budget {self.describe()} is impossible in this space: its smallest member has "
                            f"{by_macs.macs / 1e6:.2f} M MACs ({self.convention}) and "
                            f"{by_params.params:,} params")
        if math.isfinite(self.max_latency_ms):
            fastest = self.latency.fastest(space)
            if fastest > self.max_latency_ms:
                raise GlitError(f"budget latency <= {self.max_latency_ms:g} ms is impossible in this space: its "
                                f"fastest member takes {fastest:.3g} ms (predicted by {self.latency.where})")
