"""A scikit-learn baseline beside every study: did the search beat a simple model fitted on the same training split?

Tables (arrays of numbers, or a table's raw columns): a standardized logistic regression for classification, ridge
regression for regression; missing numbers imputed with the training mean (+ a missing-indicator) and text columns
one-hot encoded (values unseen in training ignored), all fitted on the training split only. Other data (images,
sequences): the majority class, or the training mean for regression. Segmentation, reconstruction and a project's
own tf.data splits have none. Scored on the validation split (the leaderboard's baseline row) and once on the test split, with the
metric names extf's objective and test metrics use (`val_accuracy`, `test_accuracy`, `val_loss` = MSE for
regression, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSIFICATION = ("binary", "multiclass")
MAX_ROWS = 50_000  # training rows the baseline fits on at most (a seeded sample beyond)


@dataclass(frozen=True)
class Baseline:
    name: str  # what was fitted, e.g. "logistic regression (standardized)"
    val: dict[str, float]  # val_* scores
    test: dict[str, float]  # test_* scores


def fit_baseline(splits, seed: int = 0) -> Baseline | None:
    """Fit on splits.train, score on splits.val and splits.test; None when the task has no baseline."""
    from extf.data.splits import DatasetSplit

    meta = splits.meta
    if meta.task not in (*CLASSIFICATION, "regression") or isinstance(splits.train, DatasetSplit):
        return None  # a project's own tf.data: its labels would cost one more pass over the training data
    tabular = meta.modality == "tabular" and hasattr(splits.train, "x")
    model, name = _tabular_model(splits.train.x, meta.task, seed) if tabular else _constant_model(meta.task)
    x, y = _features(splits.train, tabular), _labels(splits.train.y, meta.task)
    if len(y) > MAX_ROWS:  # a baseline need not see every row of a large table: a seeded sample of them
        rows = np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False)
        x, y = (x.iloc[rows] if hasattr(x, "iloc") else x[rows]), y[rows]
    model.fit(x, y)
    return Baseline(name, _scores(model, splits.val, meta, tabular, "val"),
                    _scores(model, splits.test, meta, tabular, "test"))


def _tabular_model(x, task: str, seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler())
    if isinstance(x, dict):
        numeric = [c for c, v in x.items() if np.asarray(v).dtype.kind in "fiub"]
        text = [c for c in x if c not in numeric]
        words = make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore"))
        prepare = ColumnTransformer([("numbers", numbers, numeric), ("text", words, text)])
    else:
        prepare = numbers
    if task == "regression":
        return make_pipeline(prepare, Ridge(alpha=1.0)), "ridge regression (standardized)"
    return (make_pipeline(prepare, LogisticRegression(max_iter=500, random_state=seed)),
            "logistic regression (standardized)")


def _constant_model(task: str):
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "regression":
        return DummyRegressor(strategy="mean"), "the training mean"
    return DummyClassifier(strategy="prior"), "the majority class"


def _features(split, tabular: bool):
    if not tabular:
        return np.zeros((len(split), 1))  # a constant model looks at the labels only
    x = split.x
    if isinstance(x, dict):
        import pandas as pd

        return pd.DataFrame({c: (np.asarray(v, dtype=object) if np.asarray(v).dtype.kind not in "fiub"
                                 else np.asarray(v, dtype="float64")) for c, v in x.items()})
    return np.asarray(x, dtype="float64").reshape(len(split), -1)


def _labels(y, task: str) -> np.ndarray:
    y = np.asarray(y)
    if task == "regression":
        return y.reshape(len(y), -1)[:, 0] if y.ndim > 1 and y.shape[-1] == 1 else y
    return y.reshape(len(y), -1).argmax(axis=1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)


def _scores(model, split, meta, tabular: bool, prefix: str) -> dict[str, float]:
    from sklearn import metrics

    x, y = _features(split, tabular), _labels(split.y, meta.task)
    if meta.task == "regression":
        pred = np.asarray(model.predict(x), dtype="float64").reshape(len(y), -1)[:, 0]
        return {f"{prefix}_loss": float(metrics.mean_squared_error(y, pred)),
                f"{prefix}_mae": float(metrics.mean_absolute_error(y, pred))}
    pred = model.predict(x)
    out = {f"{prefix}_accuracy": float(metrics.accuracy_score(y, pred))}
    if meta.task == "binary" and len(np.unique(y)) == 2:
        out[f"{prefix}_auc"] = float(metrics.roc_auc_score(y, model.predict_proba(x)[:, 1]))
    return out
