"""Evaluation metrics for the study notes' tasks: classification, detection, segmentation, regression.

Pure NumPy + scikit-learn (imported inside the functions), so `extf predict` and the tests can compute
metrics without loading TensorFlow. Every returned value is a finite Python float; a metric that is undefined
for the data (for example AUC when `y_true` holds a single class) is left out rather than reported as NaN,
since MLflow and the run summaries compare numbers.

Definitions (notes, "평가"):
- sensitivity (recall) of class i = TP / (TP + FN): the share of true class-i samples predicted as i;
- specificity of class i = TN / (TN + FP): the share of non-i samples not predicted as i;
- precision = TP / (TP + FP); AUC = area under the ROC curve; AP = sklearn's average precision (step-wise
  area under the precision-recall curve);
- segmentation follows Long et al., "Fully Convolutional Networks for Semantic Segmentation" (n_ij = pixels of
  class i predicted as j, t_i = sum_j n_ij): pixel accuracy sum_i n_ii / sum_i t_i, mean accuracy
  mean_i n_ii / t_i, mean IU mean_i n_ii / (t_i + sum_j n_ji - n_ii), frequency-weighted IU
  (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from extf.errors import ConfigError, DataError

TASKS = ("binary", "multiclass", "regression", "segmentation")


def classification_metrics(y_true, y_prob, class_names: Sequence[str] | None = None,
                           threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, sensitivity/specificity (per class and macro), macro precision, ROC AUC and AP.

    `y_prob` of shape (n,) or (n, 1) is the probability of class 1 (binary, predicted label
    `y_prob >= threshold`); shape (n, k) holds softmax probabilities (multiclass, predicted label = argmax,
    `threshold` unused).
    """
    threshold = _check_threshold(threshold)
    y_true = _labels(y_true, "y_true")
    y_prob = np.asarray(y_prob, dtype=float)
    binary = y_prob.ndim == 1 or (y_prob.ndim == 2 and y_prob.shape[1] == 1)
    if y_prob.ndim not in (1, 2) or y_prob.shape[0] != y_true.shape[0]:
        raise DataError(
            "Classification metrics need `y_prob` of shape (n,), (n, 1) or (n, n_classes) with "
            f"n = len(y_true). Received: y_true.shape={y_true.shape}, y_prob.shape={y_prob.shape}")
    if y_true.size == 0:
        raise DataError("Classification metrics need at least one sample. Received: y_true.shape=(0,)")
    if binary:
        score = y_prob.reshape(-1)
        n_classes = 2
        y_pred = (score >= threshold).astype(int)
    else:
        n_classes = y_prob.shape[1]
        y_pred = np.argmax(y_prob, axis=1)
    names = _class_names(class_names, n_classes)
    out = _confusion_rates(confusion(y_true, y_pred, n_classes), names)
    out.update(_ranking_scores(y_true, score if binary else y_prob, n_classes))
    return _finite(out)


def _confusion_rates(cm: np.ndarray, names: list[str]) -> dict[str, float]:
    """Accuracy, macro precision, and sensitivity / specificity per class and macro, from a confusion matrix."""
    total = cm.sum()
    tp = np.diag(cm).astype(float)
    actual = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    negatives = total - actual
    tn = total - actual - predicted + tp
    out: dict[str, float] = {"accuracy": tp.sum() / total}

    sens = _ratio(tp, actual)  # NaN where the class has no true sample
    spec = _ratio(tn, negatives)  # NaN where every sample is of that class
    # sklearn's macro precision: classes seen in y_true or y_pred, a never-predicted class counts 0
    # (zero_division=0) so that a model ignoring a class is penalised instead of dropped from the mean.
    seen = (actual + predicted) > 0
    prec = np.where(predicted > 0, _ratio(tp, predicted), 0.0)
    if np.any(~np.isnan(sens)):
        out["sensitivity_macro"] = np.nanmean(sens)
    if np.any(~np.isnan(spec)):
        out["specificity_macro"] = np.nanmean(spec)
    out["precision_macro"] = prec[seen].mean()
    for i, name in enumerate(names):
        out[f"sensitivity_{name}"] = sens[i]
        out[f"specificity_{name}"] = spec[i]
    return out


def _ranking_scores(y_true: np.ndarray, scores: np.ndarray, n_classes: int) -> dict[str, float]:
    """ROC AUC and average precision: of class 1's probability (binary, `scores` of shape (n,)), else one-vs-rest
    per class, macro, skipping classes absent from y_true (their ROC / AP are undefined)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, float] = {}
    if scores.ndim == 1:
        positives = int((y_true == 1).sum())
        if 0 < positives < len(y_true):  # ROC needs both classes; AP needs at least one positive
            out["auc"] = roc_auc_score(y_true, scores)
        if positives > 0:
            out["average_precision"] = average_precision_score(y_true, scores)
        return out
    aucs, aps = [], []
    for i in range(n_classes):
        positive = y_true == i
        if not positive.any():
            continue
        aps.append(average_precision_score(positive, scores[:, i]))
        if not positive.all():
            aucs.append(roc_auc_score(positive, scores[:, i]))
    if aucs:
        out["auc_ovr_macro"] = float(np.mean(aucs))
    if aps:
        out["average_precision_macro"] = float(np.mean(aps))
    return out


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """k×k confusion counts; rows are true classes, columns predicted classes."""
    y_true = _labels(y_true, "y_true").reshape(-1)
    y_pred = _labels(y_pred, "y_pred").reshape(-1)
    if y_true.shape != y_pred.shape:
        raise DataError(f"`y_true` and `y_pred` must have the same number of elements. "
                        f"Received: {y_true.size} and {y_pred.size}")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise DataError(f"`{name}` labels must be in [0, {n_classes - 1}] for {n_classes} classes. "
                            f"Received: labels from {arr.min()} to {arr.max()}")
    counts = np.bincount(n_classes * y_true + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def roc_curve_points(y_true, y_score):
    """(false positive rate, true positive rate, thresholds) of binary scores, as sklearn's `roc_curve`."""
    from sklearn.metrics import roc_curve

    y_true, y_score = _binary_pair(y_true, y_score)
    return roc_curve(y_true, y_score)


def pr_curve_points(y_true, y_score):
    """(recall, precision, thresholds) of a binary score vector, from sklearn's `precision_recall_curve`.

    As in sklearn, `thresholds` has one element fewer than the points: the last point (recall 0, precision 1)
    has no threshold.
    """
    from sklearn.metrics import precision_recall_curve

    y_true, y_score = _binary_pair(y_true, y_score)
    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    return recall, precision, thresholds


def auc_score(y_true, y_score) -> float:
    """ROC AUC of a binary score vector; DataError when `y_true` holds a single class (AUC undefined)."""
    from sklearn.metrics import roc_auc_score

    y_true, y_score = _binary_pair(y_true, y_score)
    if len(np.unique(y_true)) < 2:
        raise DataError("ROC AUC needs both classes in `y_true`. "
                        f"Received: only class {int(y_true[0]) if y_true.size else None}")
    return float(roc_auc_score(y_true, y_score))


def average_precision(y_true, y_score) -> float:
    """Average precision (sklearn's step-wise PR area); DataError when `y_true` has no positive."""
    from sklearn.metrics import average_precision_score

    y_true, y_score = _binary_pair(y_true, y_score)
    if not y_true.any():
        raise DataError("Average precision needs at least one positive (label 1) in `y_true`. Received: none")
    return float(average_precision_score(y_true, y_score))


def detection_metrics(y_true, y_score, threshold: float = 0.5) -> dict[str, float]:
    """Precision and recall at `threshold` plus average precision, for a binary relevance (detection) task.

    True negatives play no part here (notes: detection ignores undetected negatives).
    """
    threshold = _check_threshold(threshold)
    y_true, y_score = _binary_pair(y_true, y_score)
    detected = y_score >= threshold
    tp = float(np.sum(detected & (y_true == 1)))
    out: dict[str, float] = {}
    if detected.any():
        out["precision"] = tp / detected.sum()
    if y_true.any():
        out["recall"] = tp / y_true.sum()
        out["average_precision"] = average_precision(y_true, y_score)
    return _finite(out)


def segmentation_metrics(y_true, y_pred, n_classes: int) -> dict[str, float]:
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU (Long et al.) of integer label maps.

    Classes absent from both truth and prediction are left out of the means. A class predicted but absent from
    the truth has no accuracy (t_i = 0, left out of mean accuracy) and an IU of 0 (it counts against mean IU).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise DataError("Segmentation metrics need `y_true` and `y_pred` of the same shape. "
                        f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}")
    if y_true.size == 0:
        raise DataError(f"Segmentation metrics need at least one pixel. "
                        f"Received: y_true.shape={y_true.shape}")
    n = confusion(y_true, y_pred, n_classes).astype(float)
    n_ii = np.diag(n)
    t = n.sum(axis=1)
    union = t + n.sum(axis=0) - n_ii
    present = union > 0
    has_truth = t > 0
    iu = n_ii[present] / union[present]
    out = {
        "pixel_accuracy": n_ii.sum() / t.sum(),
        "mean_accuracy": np.mean(n_ii[has_truth] / t[has_truth]),
        "mean_iu": np.mean(iu),
        "frequency_weighted_iu": np.sum(t[present] * iu) / t.sum(),
    }
    return _finite(out)


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MSE, MAE and R² (R² as sklearn's `uniform_average` over output columns, e.g. sequence steps)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.size != y_pred.size or y_true.size == 0:
        raise DataError("Regression metrics need `y_true` and `y_pred` with the same, non-zero number of "
                        f"values. Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}")
    n = y_true.shape[0] if y_true.ndim else 1
    # (n, 1) predictions against (n,) targets are the usual Keras output shape: compare element-wise per row.
    y_true = y_true.reshape(n, -1)
    y_pred = y_pred.reshape(n, -1)
    err = y_pred - y_true
    out = {"mse": np.mean(err ** 2), "mae": np.mean(np.abs(err))}
    ss_res = np.sum(err ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    varying = ss_tot > 0  # R² is undefined for a constant target column
    if varying.any():
        out["r2"] = np.mean(1.0 - ss_res[varying] / ss_tot[varying])
    return _finite(out)


def compute_metrics(task: str, y_true, y_prob, class_names: Sequence[str] = (),
                    threshold: float = 0.5) -> dict[str, float]:
    """The metrics of `task` from model outputs (probabilities, or values for regression)."""
    if task not in TASKS:
        raise ConfigError(f"`task` must be one of {', '.join(TASKS)} to compute metrics. "
                          f"Received: task={task!r}")
    y_prob = np.asarray(y_prob)
    if task in ("binary", "multiclass"):
        if task == "binary" and y_prob.ndim == 2 and y_prob.shape[1] == 2:
            y_prob = y_prob[:, 1]  # a two-unit softmax head: the positive class is column 1
        out = classification_metrics(y_true, y_prob, class_names or None, threshold)
        if task == "binary":  # the positive class as a detection: precision, recall (and the same AP)
            out.update(detection_metrics(y_true, y_prob, threshold))
        return out
    if task == "regression":
        return regression_metrics(y_true, y_prob)
    # segmentation: (..., k) per-pixel probabilities; a single sigmoid channel is a binary mask.
    threshold = _check_threshold(threshold)
    if y_prob.shape[-1] == 1:
        y_pred = (y_prob[..., 0] >= threshold).astype(int)
        n_classes = 2
    else:
        y_pred = np.argmax(y_prob, axis=-1)
        n_classes = y_prob.shape[-1]
    y_true = np.asarray(y_true)
    if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
        y_true = y_true.reshape(y_pred.shape)  # e.g. masks stored as (..., 1)
    return segmentation_metrics(y_true, y_pred, n_classes)


def _check_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ConfigError("`evaluation.threshold` must be in [0, 1]: a sample is predicted positive when its "
                          f"probability >= threshold. Received: evaluation.threshold={threshold}")
    return value


def _labels(y, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(f"`{name}` must hold integer class labels. "
                            f"Received: non-integer values in {name}")
    elif arr.dtype.kind not in "iub":
        raise DataError(f"`{name}` must hold integer class labels. Received: dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    return arr.reshape(-1) if arr.ndim == 2 and arr.shape[1] == 1 else arr


def _binary_pair(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = _labels(y_true, "y_true").reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    if y_true.shape != y_score.shape:
        raise DataError(f"`y_true` and `y_score` must have the same length. "
                        f"Received: {y_true.size} and {y_score.size}")
    if y_true.size and not np.isin(y_true, (0, 1)).all():
        raise DataError(f"Binary metrics need labels 0 and 1. "
                        f"Received: labels {sorted(set(y_true.tolist()))}")
    return y_true, y_score


def _class_names(class_names, n_classes: int) -> list[str]:
    if not class_names:
        return [str(i) for i in range(n_classes)]
    if len(class_names) != n_classes:
        raise DataError(f"`class_names` must name each of the {n_classes} classes. "
                        f"Received: {len(class_names)} names {list(class_names)}")
    # MLflow metric names allow alphanumerics, _ - . / and space only.
    names = [re.sub(r"[^A-Za-z0-9_\-./ ]", "_", str(c)) for c in class_names]
    # Sanitising can merge distinct names ("a?" and "a!"); the index keeps their metric keys apart.
    return [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _finite(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
