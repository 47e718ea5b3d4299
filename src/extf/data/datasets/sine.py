"""A generated noisy sine wave cut into sliding windows: `window` past values -> the next value (regression)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from extf.config.constraints import NON_NEGATIVE, POSITIVE_INT
from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta, Splits
from extf.errors import DataError


@dataclass
class Conf(DatasetConf):
    n_points: int
    window: int
    period: float  # time steps per sine cycle
    noise: float
    constraints: ClassVar = {"n_points": POSITIVE_INT, "window": POSITIVE_INT, "noise": NON_NEGATIVE}


def load(cfg: dict, seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    t = np.arange(cfg["n_points"], dtype="float64")
    series = np.sin(2 * np.pi * t / cfg["period"]) + rng.normal(0.0, cfg["noise"], size=t.shape)
    window = cfg["window"]
    if window >= len(series):
        raise DataError(f"dataset.window must be smaller than dataset.n_points. Received: "
                        f"dataset.window={window}, dataset.n_points={len(series)}")
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], window)[..., np.newaxis].astype("float32")
    y = series[window:].astype("float32")
    return split_arrays(x, y, Meta("sine", "regression", "sequence", x.shape[1:], ordered=True), cfg, seed)
