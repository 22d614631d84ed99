"""The network: sliceable layers, the block, and the supernet that is also every standalone model."""

from glit.nn.model import Block, Supernet, build_model

__all__ = ["Block", "Supernet", "build_model"]
