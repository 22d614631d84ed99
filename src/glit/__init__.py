"""glit: hierarchical neural architecture search for Global and Local image Transformers (GLiT, ICCV 2021)."""

from glit.cost import Cost, cost
from glit.errors import GlitError
from glit.presets import space_preset
from glit.space import Arch, BlockGenes, Family, SearchSpace
from glit.version import __version__

__all__ = ["__version__", "Arch", "BlockGenes", "Cost", "Family", "GlitError", "SearchSpace", "Supernet", "build_model",
           "cost", "load_model", "space_preset"]


def __getattr__(name):
    # The network needs torch; the search space and the cost model do not. Import it on first use.
    if name in ("Supernet", "build_model"):
        from glit import nn

        return getattr(nn, name)
    if name == "load_model":
        from glit.export import load_model

        return load_model
    raise AttributeError(f"module 'glit' has no attribute {name!r}")
