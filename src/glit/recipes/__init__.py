"""One linear function per pipeline step: train_supernet, train, evaluate (search and run come later)."""

from glit.recipes.evaluate import evaluate_checkpoint
from glit.recipes.train import train
from glit.recipes.train_supernet import train_supernet

__all__ = ["evaluate_checkpoint", "train", "train_supernet"]
