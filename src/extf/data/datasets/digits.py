"""scikit-learn's embedded 8x8 handwritten digits (1797 images, 10 classes), shape (8, 8, 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta, Splits


@dataclass
class Conf(DatasetConf):
    pass


def load(cfg: dict, seed: int) -> Splits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("float32")[..., np.newaxis]  # (n, 8, 8, 1), raw pixel values 0..16
    y = bunch.target.astype("int64")
    # the model rescales to [0, 1] itself, so it takes the raw images sklearn gives
    meta = Meta("digits", "multiclass", "image", x.shape[1:], tuple(str(c) for c in range(10)),
                extra={"rescale": 1.0 / 16.0})
    return split_arrays(x, y, meta, cfg, seed)
