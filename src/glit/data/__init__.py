"""Data: datasets, splits, samplers, transforms and batch mixing."""
