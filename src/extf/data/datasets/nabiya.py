"""The "Nabiya" (butterfly) melody of the study notes: windows of `window` notes -> the next note."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

import numpy as np

from extf.config.constraints import POSITIVE_INT, OneOf
from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta, Splits
from extf.errors import DataError


@dataclass
class Conf(DatasetConf):
    window: int
    features: str  # index: one feature (note index / vocabulary size); pitch_duration: two features
    path: str | None  # null: the melody shipped with extf
    repeats: int  # the song played this many times in a row (the test split is then a part heard before)
    constraints: ClassVar = {"window": POSITIVE_INT, "repeats": POSITIVE_INT,
                             "features": OneOf({"index", "pitch_duration"})}


NABIYA_PITCHES = "cdefgab"
NABIYA_DURATIONS = "48"
NABIYA_VOCAB = tuple(p + d for p in NABIYA_PITCHES for d in NABIYA_DURATIONS)  # c4 c8 d4 d8 ... b8: 14 classes


def read_nabiya(path: str | None = None) -> list[str]:
    """The melody as note tokens (pitch letter + duration), comments and blank lines skipped."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"Melody file not found: expected a text file of note tokens such as 'g8 e8 e4'. "
                            f"Check dataset.path. Received: dataset.path={path!r}")
        text = p.read_text(encoding="utf-8")
    else:
        text = resources.files("extf.data").joinpath("files/nabiya.txt").read_text(encoding="utf-8")
    tokens = [tok for line in text.splitlines() if not line.lstrip().startswith("#") for tok in line.split()]
    bad = [t for t in tokens if t not in NABIYA_VOCAB]
    if bad:
        raise DataError(f"Unknown note token(s) in the melody: expected a pitch c-b followed by a duration 4 or 8 "
                        f"(e.g. g8). Received: {bad[:5]}")
    return tokens


def load(cfg: dict, seed: int) -> Splits:
    tokens = read_nabiya(cfg.get("path")) * cfg.get("repeats", 1)
    window = cfg["window"]
    if window >= len(tokens):
        raise DataError(f"dataset.window must be smaller than the melody length ({len(tokens)} notes). "
                        f"Received: dataset.window={window}")
    idx = np.array([NABIYA_VOCAB.index(t) for t in tokens])
    if cfg["features"] == "index":
        feats = (idx / float(len(NABIYA_VOCAB)))[:, np.newaxis]
    else:  # pitch_duration: the notes' two attributes, each scaled to [0, 1]
        pitch = np.array([NABIYA_PITCHES.index(t[0]) for t in tokens]) / (len(NABIYA_PITCHES) - 1)
        dur = np.array([NABIYA_DURATIONS.index(t[1]) for t in tokens], dtype="float64")
        feats = np.stack([pitch, dur], axis=1)
    x = np.stack([feats[i: i + window] for i in range(len(tokens) - window)]).astype("float32")
    y = idx[window:].astype("int64")
    return split_arrays(x, y, Meta("nabiya", "multiclass", "sequence", x.shape[1:], NABIYA_VOCAB, ordered=True),
                        cfg, seed)
