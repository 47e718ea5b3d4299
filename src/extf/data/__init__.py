"""Datasets: loaders returning train / validation / test splits with metadata."""

from extf.data.datasets import load_dataset
from extf.data.splits import Meta, Split, Splits

__all__ = ["Meta", "Split", "Splits", "load_dataset"]
