"""Your own arrays: a NumPy .npz archive with the inputs and the targets (named by x_key and y_key)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from extf.config.constraints import OneOf
from extf.config.schema import DatasetConf
from extf.data.arrays import infer_task, split_arrays
from extf.data.splits import Meta, Splits
from extf.errors import DataError


@dataclass
class Conf(DatasetConf):
    path: str
    x_key: str
    y_key: str
    task: str  # auto | binary | multiclass | regression
    standardize: bool
    constraints: ClassVar = {"task": OneOf({"auto", "binary", "multiclass", "regression"})}


def load(cfg: dict, seed: int) -> Splits:
    path = Path(cfg["path"]).expanduser()
    if not path.is_file():
        raise DataError(f"NPZ file not found: expected a NumPy .npz archive. Check dataset.path (relative paths "
                        f"start at the working directory {Path.cwd()}). Received: dataset.path={cfg['path']!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            for key in (cfg["x_key"], cfg["y_key"]):
                if key not in keys:
                    raise DataError(f"Array {key!r} is not in {path.name}. Expected one of: {', '.join(keys)}; set "
                                    f"dataset.x_key / dataset.y_key. Received: {key!r}")
            x, y = archive[cfg["x_key"]], archive[cfg["y_key"]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a truncated or corrupt archive
        raise DataError(f"Could not read {str(path)!r} as a NumPy .npz archive ({e}). Save it with numpy.savez. "
                        f"Received: dataset.path={cfg['path']!r}") from None
    if len(x) != len(y):
        raise DataError(f"x and y in {path.name} have different lengths; expected one target per sample. "
                        f"Received: len(x)={len(x)}, len(y)={len(y)}")
    y, task, classes = infer_task(y, cfg["task"], f"npz:{path.name}")
    modality = {2: "tabular", 3: "sequence", 4: "image"}.get(x.ndim)
    if modality is None:
        raise DataError(f"x in {path.name} must have 2 (tabular), 3 (sequence) or 4 (image) dimensions. "
                        f"Received: x.shape={x.shape}")
    return split_arrays(x.astype("float32"), y, Meta("npz", task, modality, x.shape[1:], classes), cfg, seed)
