"""One linear function per pipeline step: train_supernet, search, train, evaluate."""

from glit.recipes.evaluate import evaluate_checkpoint
from glit.recipes.search import search
from glit.recipes.train import train
from glit.recipes.train_supernet import train_supernet

__all__ = ["evaluate_checkpoint", "search", "train", "train_supernet"]
