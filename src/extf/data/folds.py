"""k-fold cross-validation splits of a study's training + validation data (`tuner.cv_folds`).

The test split is never part of a fold: it reaches only the final evaluation, as always. Folds are stratified for
classification (scikit-learn's StratifiedKFold), plain KFold otherwise, both shuffled with the study's seed; data in
time order (sequences) is refused unless `tuner.cv_method=time_series` (TimeSeriesSplit: each fold validates on the
stretch after its training data). What a model learns from its training split (the standardization of a table of
numbers, a table's vocabularies and imputation means) is fitted again on each fold's training part, so no fold's
model has seen its own validation data, and once more on train + validation for the final model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from extf.data.splits import DatasetSplit, FileSplit, Split, Splits
from extf.errors import ConfigError

METHODS = ("auto", "stratified", "kfold", "time_series")
CLASSIFICATION = ("binary", "multiclass")


def check_folds(splits: Splits, k: int, method: str = "auto") -> str:
    """The fold method to use (`auto` resolved), or one ConfigError saying why these folds cannot be made."""
    meta = splits.meta
    if method not in METHODS:
        raise ConfigError(f"tuner.cv_method must be one of: {', '.join(METHODS)}. Received: tuner.cv_method={method!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"tuner.cv_folds must be 0 (off: one validation split) or a number of folds >= 2. "
                          f"Received: tuner.cv_folds={k!r}")
    if isinstance(splits.train, DatasetSplit):
        raise ConfigError(f"tuner.cv_folds cuts training + validation data into folds, but dataset '{meta.name}' "
                          f"comes as the project's own tf.data pipelines, which extf cannot cut. Use "
                          f"tuner.cv_folds=0 (one validation split), or return arrays (x, y) from the dataset "
                          f"function. Received: tuner.cv_folds={k!r}")
    n = len(splits.train) + len(splits.val)
    if k > n:
        raise ConfigError(f"tuner.cv_folds={k} is more folds than the {n} samples of training + validation data. "
                          f"Use fewer folds. Received: tuner.cv_folds={k}")
    if meta.ordered and method != "time_series":
        raise ConfigError(f"dataset '{meta.name}' is in time order, and shuffled folds would validate on the past "
                          f"with a model trained on the future. Use tuner.cv_method=time_series (each fold validates "
                          f"on the stretch after its training data) or tuner.cv_folds=0. Received: "
                          f"tuner.cv_method={method!r}")
    if method == "auto":
        method = "stratified" if meta.task in CLASSIFICATION else "kfold"
    if method == "stratified":
        if meta.task not in CLASSIFICATION:
            raise ConfigError(f"tuner.cv_method=stratified needs class labels, but dataset '{meta.name}' is a "
                              f"{meta.task} task. Use tuner.cv_method=kfold. Received: tuner.cv_method=stratified")
        _, counts = np.unique(_labels(splits), return_counts=True)
        if counts.min() < k:
            raise ConfigError(f"tuner.cv_folds={k} needs at least {k} samples of every class in training + "
                              f"validation data (each fold validates on every class), but the smallest class has "
                              f"{counts.min()}. Use tuner.cv_folds={max(2, int(counts.min()))} or fewer. Received: "
                              f"tuner.cv_folds={k}")
    return method


def fold_splits(splits: Splits, k: int, method: str, seed: int, dataset_cfg: dict | None = None) -> list[Splits]:
    """k Splits whose train / val are the folds of train + validation; test stays the study's test split."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    method = check_folds(splits, k, method)
    pooled = pooled_train_val(splits)
    if method == "time_series":
        splitter = TimeSeriesSplit(n_splits=k)
    elif method == "stratified":
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for train_idx, val_idx in splitter.split(np.zeros(len(pooled)), _labels(splits)):
        fold = Splits(_subset(pooled, train_idx), _subset(pooled, val_idx), splits.test, splits.meta)
        folds.append(refit_statistics(fold, dataset_cfg))
    return folds


def final_splits(splits: Splits, dataset_cfg: dict | None = None) -> Splits:
    """For the final model after cross-validation: train on train + validation (statistics refitted on it); the
    validation split is the old one, for the history's curves only (it is part of the training data now)."""
    return refit_statistics(Splits(pooled_train_val(splits), splits.val, splits.test, splits.meta), dataset_cfg)


def pooled_train_val(splits: Splits) -> Split | FileSplit:
    train, val = splits.train, splits.val
    y = np.concatenate([train.y, val.y])
    index = np.concatenate([train.index, val.index])
    if isinstance(train, FileSplit):
        return replace(train, files=tuple(train.files) + tuple(val.files), y=y, index=index)
    if isinstance(train.x, dict):
        x = {c: np.concatenate([np.asarray(train.x[c]), np.asarray(val.x[c])]) for c in train.x}
    else:
        x = np.concatenate([train.x, val.x])
    return replace(train, x=x, y=y, index=index)


def refit_statistics(splits: Splits, dataset_cfg: dict | None = None) -> Splits:
    """What the model learns from its training split, fitted on `splits.train`: a table's vocabularies and means,
    or the standardization of an array of numbers."""
    meta = splits.meta
    if "table" in meta.extra:
        from extf.data.tables import fit_statistics

        return fit_statistics(splits, dict(dataset_cfg or {}))
    if "feature_mean" in meta.extra and isinstance(splits.train, Split):
        x = np.asarray(splits.train.x, dtype="float64")
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[std == 0] = 1.0
        meta = replace(meta, extra={**meta.extra, "feature_mean": mean.tolist(), "feature_std": std.tolist()})
        return replace(splits, meta=meta)
    return splits


def _labels(splits: Splits) -> np.ndarray:
    y = np.concatenate([splits.train.y, splits.val.y])
    return y.reshape(len(y), -1).argmax(axis=1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]


def _subset(split: Split | FileSplit, rows: np.ndarray):
    if isinstance(split, FileSplit):
        return replace(split, files=tuple(np.asarray(split.files, dtype=object)[rows]), y=split.y[rows],
                       index=split.index[rows])
    x = {c: np.asarray(v)[rows] for c, v in split.x.items()} if isinstance(split.x, dict) else split.x[rows]
    return replace(split, x=x, y=split.y[rows], index=split.index[rows])
