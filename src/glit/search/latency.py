"""A latency table: the measured latency of each part of a model on one device, and the prediction of an
architecture's latency as the sum of its parts. Plain Python: no torch here (``glit.recipes.latency`` measures).

The table holds the stem, the head and every distinct block configuration of a space (a block's latency depends
only on its own genes and the family), plus a constant measured end to end (what the sum of the parts misses:
Python dispatch between blocks, the first layer's cache misses). ``predict(arch)`` = stem + each block + head +
constant. ``fastest(space)`` is exact: each block's fastest option, as ``glit.cost.extremes`` does for MACs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from glit.errors import GlitError
from glit.space import Arch, BlockGenes, Family, SearchSpace


def block_key(genes: BlockGenes) -> str:
    """A block configuration's key in the table: its genes as sorted JSON."""
    return json.dumps(dataclasses.asdict(genes), sort_keys=True)


@dataclass(frozen=True)
class LatencyTable:
    family: Family
    stem_ms: float
    head_ms: float
    blocks: dict[str, float]
    constant_ms: float = 0.0
    info: dict = field(default_factory=dict)  # device, torch, batch, dtype, threads, how it was measured
    where: str = "latency table"

    def predict(self, arch: Arch) -> float:
        """The predicted latency of ``arch`` in milliseconds."""
        if arch.family != self.family:
            raise GlitError(f"{self.where}: built for another family ({self.family.embed_dim} wide, "
                            f"{self.family.num_tokens} tokens) than the architecture's")
        total = self.stem_ms + self.head_ms + self.constant_ms
        for i, genes in enumerate(arch.blocks):
            key = block_key(genes)
            if key not in self.blocks:
                raise GlitError(f"{self.where}: no entry for block {i} ({key}); build the table for this space")
            total += self.blocks[key]
        return total

    def fastest(self, space: SearchSpace) -> float:
        """The predicted latency of the fastest member of ``space`` (exact: blocks are independent)."""
        total = self.stem_ms + self.head_ms + self.constant_ms
        for i in range(space.family.depth):
            times = [self.blocks.get(block_key(o), math.inf) for o in space.block_options(i)]
            total += min(times)
        return total

    def to_dict(self) -> dict:
        return {"family": self.family.to_dict(), "stem_ms": self.stem_ms, "head_ms": self.head_ms,
                "constant_ms": self.constant_ms, "info": self.info, "blocks": self.blocks}

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise GlitError(f"{path}: cannot read latency table ({err.strerror})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GlitError(f"{path}: not a latency table (not JSON); build one with glit latency build") from None
        if not isinstance(data, dict) or not {"family", "stem_ms", "head_ms", "blocks"} <= set(data):
            raise GlitError(f"{path}: not a latency table (needs family, stem_ms, head_ms, blocks)")
        family = Family.from_dict(data["family"], f"{path}: family")
        values = [data["stem_ms"], data["head_ms"], data.get("constant_ms", 0.0), *data["blocks"].values()]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise GlitError(f"{path}: latency table entries must be finite numbers of milliseconds")
        return cls(family, float(data["stem_ms"]), float(data["head_ms"]), dict(data["blocks"]),
                   float(data.get("constant_ms", 0.0)), dict(data.get("info") or {}), str(path))
