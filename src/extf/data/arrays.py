"""Arrays -> seeded splits, and the task of user-given targets: what in-memory dataset modules share (extf's and
a project's: docs/extending.md)."""

from __future__ import annotations

import numpy as np

from extf.data.splits import Meta, Splits, make_splits
from extf.errors import DataError


def split_arrays(x, y, meta: Meta, cfg: dict, seed: int) -> Splits:
    """Every sample, split (seeded) by the dataset's fractions; a table's preprocessing statistics from its
    training split."""
    splits = make_splits(x, y, meta, cfg["val_fraction"], cfg["test_fraction"], seed,
                         standardize=bool(cfg.get("standardize", False)))
    if "table" in splits.meta.extra:  # category columns or missing cells: the model's preprocessing statistics
        from extf.data.tables import fit_statistics

        splits = fit_statistics(splits, cfg)
    return splits


def infer_task(y: np.ndarray, task: str, name: str) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Encode targets; `auto` treats non-float or few-valued integer targets as classes."""
    if task == "auto":
        if y.dtype.kind in "OUSb" or (y.dtype.kind in "iu" and len(np.unique(y)) <= 50):
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        elif y.dtype.kind == "f" and np.all(np.mod(y[np.isfinite(y)], 1) == 0) and len(np.unique(y)) <= 20:
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        else:
            task = "regression"
    if task == "regression":
        try:
            return y.astype("float32"), task, ()
        except (TypeError, ValueError):
            raise DataError(f"Dataset '{name}': task=regression needs numeric targets. Use dataset.task=multiclass "
                            f"for labels. Received: targets such as {y[:3].tolist()}") from None
    classes, encoded = np.unique(y.astype(str) if y.dtype.kind in "OUS" else y, return_inverse=True)
    if task == "binary" and len(classes) != 2:
        raise DataError(f"Dataset '{name}': task=binary needs exactly 2 classes. Use dataset.task=multiclass. "
                        f"Received: {len(classes)} classes {classes[:10].tolist()}")
    if len(classes) < 2:
        raise DataError(f"Dataset '{name}' has a single class in its target; expected at least 2. "
                        f"Received: classes={classes.tolist()}")
    return encoded.astype("int64"), task, tuple(str(c) for c in classes)
