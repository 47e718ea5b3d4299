"""Metrics agree with sklearn and with hand-computed values; plots write PNGs; no TensorFlow import."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from extf.errors import ConfigError, DataError
from extf.evaluation import metrics as M
from extf.evaluation import plots


def _random_multiclass(seed=0, n=300, k=4):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # Probabilities that lean towards the true class, so AUC/AP are far from both 0.5 and 1.
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y_true]
    y_prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, y_prob


def _random_binary(seed=1, n=300):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    y_prob = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * (y_true - 0.5))))
    return y_true, y_prob


# --- classification against sklearn -------------------------------------------------------------------------


def test_multiclass_matches_sklearn():
    y_true, y_prob = _random_multiclass()
    k = y_prob.shape[1]
    y_pred = y_prob.argmax(axis=1)
    out = M.classification_metrics(y_true, y_prob)

    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    recalls = skm.recall_score(y_true, y_pred, average=None, labels=range(k))
    for i in range(k):
        assert out[f"sensitivity_{i}"] == pytest.approx(recalls[i])
        # specificity of class i = recall of "not i"
        assert out[f"specificity_{i}"] == pytest.approx(skm.recall_score(y_true != i, y_pred != i))
    assert out["sensitivity_macro"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    assert out["specificity_macro"] == pytest.approx(
        np.mean([skm.recall_score(y_true != i, y_pred != i) for i in range(k)]))
    assert out["precision_macro"] == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert out["auc_ovr_macro"] == pytest.approx(
        skm.roc_auc_score(y_true, y_prob, multi_class="ovr", average="macro"))
    onehot = np.eye(k, dtype=int)[y_true]
    assert out["average_precision_macro"] == pytest.approx(
        skm.average_precision_score(onehot, y_prob, average="macro"))
    assert "auc" not in out and "average_precision" not in out
    assert 0.5 < out["auc_ovr_macro"] < 0.99  # the data is informative but not trivially separable
    assert all(type(v) is float for v in out.values())


def test_binary_matches_sklearn():
    y_true, y_prob = _random_binary()
    y_pred = (y_prob >= 0.5).astype(int)
    for shaped in (y_prob, y_prob[:, None]):  # (n,) and the (n, 1) of a sigmoid head
        out = M.classification_metrics(y_true, shaped)
        assert out["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert out["sensitivity_1"] == pytest.approx(skm.recall_score(y_true, y_pred))
        assert out["specificity_1"] == pytest.approx(skm.recall_score(1 - y_true, 1 - y_pred))
        assert out["sensitivity_0"] == pytest.approx(out["specificity_1"])
        assert out["precision_macro"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro"))
        assert out["auc"] == pytest.approx(skm.roc_auc_score(y_true, y_prob))
        assert out["average_precision"] == pytest.approx(skm.average_precision_score(y_true, y_prob))
        assert "auc_ovr_macro" not in out


def test_confusion_matches_sklearn():
    y_true, y_prob = _random_multiclass(seed=3, k=5)
    y_pred = y_prob.argmax(axis=1)
    cm = M.confusion(y_true, y_pred, 5)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(5)))
    # rows are true classes
    assert M.confusion([0, 1], [1, 1], 3).tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(DataError, match="Received"):
        M.confusion([0, 3], [0, 1], 3)


def test_specificity_hand_computed():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    out = M.classification_metrics(y_true, np.eye(3)[y_pred], class_names=["cat", "dog", "bird"])
    # class cat:  negatives are samples 2..5; sample 5 is predicted cat (FP)  -> TN/(TN+FP) = 3/4
    # class dog:  negatives are samples 0,1,4,5; sample 1 is predicted dog     -> 3/4
    # class bird: negatives are samples 0..3; none predicted bird             -> 4/4
    assert out["specificity_cat"] == pytest.approx(3 / 4)
    assert out["specificity_dog"] == pytest.approx(3 / 4)
    assert out["specificity_bird"] == pytest.approx(1.0)
    assert out["specificity_macro"] == pytest.approx((3 / 4 + 3 / 4 + 1) / 3)
    # sensitivities: cat 1/2, dog 2/2, bird 1/2
    sensitivities = (out["sensitivity_cat"], out["sensitivity_dog"], out["sensitivity_bird"])
    assert sensitivities == pytest.approx((0.5, 1, 0.5))
    assert out["accuracy"] == pytest.approx(4 / 6)


def test_never_predicted_class_counts_zero_in_precision_macro():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 0])  # class 2 is never predicted
    out = M.classification_metrics(y_true, np.eye(3)[y_pred])
    # precision: class 0 = 1/3, class 1 = 2/3, class 2 undefined -> 0 (sklearn's zero_division=0)
    assert out["precision_macro"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert out["precision_macro"] == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro", zero_division=0))


def test_binary_threshold_changes_predictions():
    y_true = np.array([0, 1, 1, 1])
    y_prob = np.array([0.2, 0.4, 0.6, 0.8])
    at = {t: M.classification_metrics(y_true, y_prob, threshold=t) for t in (0.3, 0.5, 0.6, 0.9)}
    assert at[0.3]["accuracy"] == 1.0  # predictions 0 1 1 1
    assert at[0.5]["accuracy"] == 0.75 and at[0.5]["sensitivity_1"] == pytest.approx(2 / 3)  # 0 0 1 1
    assert at[0.6]["accuracy"] == 0.75  # ">=": 0.6 is positive at threshold 0.6
    assert at[0.9]["accuracy"] == 0.25 and at[0.9]["sensitivity_1"] == 0.0 and at[0.9]["specificity_1"] == 1.0
    assert len({m["auc"] for m in at.values()}) == 1  # AUC does not depend on the threshold


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "high"])
def test_threshold_outside_unit_interval_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"evaluation\.threshold.*Received: evaluation\.threshold="):
        M.classification_metrics([0, 1], [0.2, 0.8], threshold=bad)
    with pytest.raises(ConfigError, match="Received"):
        M.compute_metrics("binary", [0, 1], [0.2, 0.8], threshold=bad)
    with pytest.raises(ConfigError, match="Received"):
        M.detection_metrics([0, 1], [0.2, 0.8], threshold=bad)


def test_threshold_bounds_are_allowed():
    assert M.classification_metrics([0, 1], [0.2, 0.8], threshold=0)["accuracy"] == 0.5  # all positive
    assert M.classification_metrics([0, 1], [0.2, 1.0], threshold=1)["accuracy"] == 1.0


def test_undefined_metrics_are_omitted_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined metrics are skipped, not left to sklearn's warnings
        # a single class: no AUC, no specificity of class 1, no sensitivity of class 0
        out = M.classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])
        assert "auc" not in out and "specificity_1" not in out and "sensitivity_0" not in out
        assert out["average_precision"] == 1.0
        out = M.classification_metrics([0, 0, 0], np.eye(3)[[0, 1, 0]])
    assert "auc_ovr_macro" not in out
    assert all(np.isfinite(v) for v in out.values())


def test_multiclass_auc_skips_classes_absent_from_truth():
    y_true, y_prob = _random_multiclass(seed=4, k=4)
    keep = y_true != 3
    y_true, y_prob = y_true[keep], y_prob[keep]
    out = M.classification_metrics(y_true, y_prob)
    expected = np.mean([skm.roc_auc_score(y_true == i, y_prob[:, i]) for i in range(3)])
    assert out["auc_ovr_macro"] == pytest.approx(expected)
    assert "sensitivity_3" not in out and "specificity_3" in out


def test_class_names_are_sanitised_for_mlflow():
    out = M.classification_metrics([0, 1, 1], [0.1, 0.9, 0.4], class_names=["no:tumour", "tumour (big)"])
    assert {"sensitivity_no_tumour", "specificity_tumour _big_"} <= set(out)
    with pytest.raises(DataError, match="Received"):
        M.classification_metrics([0, 1], [0.1, 0.9], class_names=["a", "b", "c"])


def test_shape_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="Received"):
        M.classification_metrics([0, 1, 1], [0.1, 0.9])


# --- the study notes' ROC / PR examples ---------------------------------------------------------------------

# ROC example (notes, "평가 : 분류")
ROC_class_A = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 1])
ROC_proba_A = np.array([0.05, 0.15, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.95, 0.95])
ROC_class_B = np.array([0, 0, 1, 0, 1, 0, 0, 1, 0, 1])
ROC_proba_B = np.array([0.05, 0.05, 0.15, 0.25, 0.35, 0.45, 0.65, 0.75, 0.85, 0.95])

# PR example (notes, "평가 : 검출 및 검색")
PR_class_A = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1])
PR_proba_A = np.array([0.05, 0.05, 0.15, 0.15, 0.25, 0.25, 0.35, 0.35, 0.45, 0.45,
                       0.55, 0.55, 0.65, 0.85, 0.95])
PR_class_B = np.array([0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1])
PR_proba_B = np.array([0.05, 0.05, 0.15, 0.15, 0.25, 0.25, 0.25, 0.35, 0.35, 0.45,
                       0.55, 0.55, 0.65, 0.75, 0.95])

NOTES_CASES = [  # y_true, y_score, AUC, AP (sklearn's values, written out)
    (ROC_class_A, ROC_proba_A, 20 / 24, 0.8166666666666667),  # 20 of 4 x 6 (positive, negative) pairs ranked
    (ROC_class_B, ROC_proba_B, 16 / 24, 0.6666666666666666),
    (PR_class_A, PR_proba_A, 0.81, 0.7396825396825397),
    (PR_class_B, PR_proba_B, 0.59, 0.5046503496503496),
]


@pytest.mark.parametrize("y_true, y_score, auc, ap", NOTES_CASES, ids=["roc_A", "roc_B", "pr_A", "pr_B"])
def test_notes_examples(y_true, y_score, auc, ap):
    assert M.auc_score(y_true, y_score) == pytest.approx(auc, abs=1e-12)
    assert M.average_precision(y_true, y_score) == pytest.approx(ap, abs=1e-12)
    assert M.auc_score(y_true, y_score) == pytest.approx(skm.roc_auc_score(y_true, y_score))
    assert M.average_precision(y_true, y_score) == pytest.approx(skm.average_precision_score(y_true, y_score))
    out = M.classification_metrics(y_true, y_score)
    assert out["auc"] == pytest.approx(auc) and out["average_precision"] == pytest.approx(ap)
    # the notes compute AUC as the trapezoid area under roc_curve's points
    fpr, tpr, _ = M.roc_curve_points(y_true, y_score)
    assert skm.auc(fpr, tpr) == pytest.approx(auc)


def test_curve_points_match_sklearn():
    y_true, y_score = _random_binary(seed=5)
    for got, want in zip(M.roc_curve_points(y_true, y_score), skm.roc_curve(y_true, y_score)):
        np.testing.assert_allclose(got, want)
    recall, precision, thresholds = M.pr_curve_points(y_true, y_score)
    p, r, t = skm.precision_recall_curve(y_true, y_score)
    np.testing.assert_allclose(recall, r)
    np.testing.assert_allclose(precision, p)
    np.testing.assert_allclose(thresholds, t)
    with pytest.raises(DataError, match="Received"):
        M.auc_score([1, 1], [0.3, 0.6])


def test_detection_metrics():
    y_true, y_score = _random_binary(seed=6)
    y_pred = (y_score >= 0.7).astype(int)
    out = M.detection_metrics(y_true, y_score, threshold=0.7)
    assert out["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(y_true, y_score))
    assert "precision" not in M.detection_metrics([0, 1], [0.1, 0.2])  # nothing detected: precision undefined


# --- segmentation -------------------------------------------------------------------------------------------

SEG_TRUE = np.array([[0, 0, 0],
                     [0, 1, 1],
                     [2, 2, 1]])
SEG_PRED = np.array([[0, 0, 1],
                     [0, 1, 1],
                     [2, 0, 2]])
# n_ij (row true i, column predicted j):  [[3, 1, 0],
#                                          [0, 2, 1],
#                                          [1, 0, 1]]
# t_i = [4, 3, 2], predicted totals sum_j n_ji = [4, 3, 2], n_ii = [3, 2, 1]
# pixel accuracy = (3 + 2 + 1) / 9 = 2/3
# mean accuracy  = (3/4 + 2/3 + 1/2) / 3 = 23/36
# IU_i = n_ii / (t_i + sum_j n_ji - n_ii) = 3/5, 2/4, 1/3  -> mean IU = (3/5 + 1/2 + 1/3) / 3 = 43/90
# frequency-weighted IU = (4 * 3/5 + 3 * 1/2 + 2 * 1/3) / 9 = 137/270
SEG_EXPECTED = {"pixel_accuracy": 2 / 3, "mean_accuracy": 23 / 36, "mean_iu": 43 / 90,
                "frequency_weighted_iu": 137 / 270}


def test_segmentation_hand_computed():
    assert M.segmentation_metrics(SEG_TRUE, SEG_PRED, 3) == pytest.approx(SEG_EXPECTED)
    # a class absent from both truth and prediction is ignored
    assert M.segmentation_metrics(SEG_TRUE, SEG_PRED, 5) == pytest.approx(SEG_EXPECTED)
    # any equal shape: a batch of maps gives the same counts
    assert M.segmentation_metrics(SEG_TRUE[None], SEG_PRED[None], 3) == pytest.approx(SEG_EXPECTED)
    perfect = M.segmentation_metrics(SEG_TRUE, SEG_TRUE, 3)
    assert perfect == dict.fromkeys(SEG_EXPECTED, 1.0)


def test_segmentation_class_predicted_but_absent_counts_against_mean_iu():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])
    out = M.segmentation_metrics(y_true, y_pred, 3)
    # IU: class 0 = 1/2, class 1 = 2/2, class 2 = 0/1; accuracy of class 2 is undefined (t_2 = 0)
    assert out["mean_iu"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert out["mean_accuracy"] == pytest.approx((0.5 + 1) / 2)
    assert out["frequency_weighted_iu"] == pytest.approx((2 * 0.5 + 2 * 1) / 4)


def test_segmentation_via_compute_metrics_takes_argmax_over_last_axis():
    probs = np.eye(3)[SEG_PRED][None] * 0.8 + 0.1  # (1, 3, 3, 3) per-pixel scores
    assert M.compute_metrics("segmentation", SEG_TRUE[None], probs) == pytest.approx(SEG_EXPECTED)
    assert M.compute_metrics("segmentation", SEG_TRUE[None, ..., None], probs) == pytest.approx(SEG_EXPECTED)


# --- regression and dispatch --------------------------------------------------------------------------------


def test_regression_matches_sklearn():
    rng = np.random.default_rng(7)
    y_true = rng.normal(size=200)
    y_pred = y_true + rng.normal(scale=0.5, size=200)
    out = M.regression_metrics(y_true, y_pred[:, None])  # Keras regression heads output (n, 1)
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y_true, y_pred))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert out["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))
    # sequences: (n, steps) targets, R² averaged over steps as sklearn's default uniform_average
    y_true, y_pred = y_true.reshape(40, 5), y_pred.reshape(40, 5)
    out = M.regression_metrics(y_true, y_pred)
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y_true, y_pred))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert out["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))
    assert "r2" not in M.regression_metrics([1.0, 1.0], [1.0, 2.0])  # constant target: R² undefined


def test_compute_metrics_dispatch():
    y_true, y_prob = _random_multiclass(seed=8, k=3)
    assert M.compute_metrics("multiclass", y_true, y_prob) == M.classification_metrics(y_true, y_prob)
    yb, pb = _random_binary(seed=9)
    two_unit = np.stack([1 - pb, pb], axis=1)
    expected = {**M.classification_metrics(yb, pb, None, 0.4), **M.detection_metrics(yb, pb, 0.4)}
    assert M.compute_metrics("binary", yb, two_unit, threshold=0.4) == expected
    assert set(M.compute_metrics("regression", [1.0, 2.0, 3.0], [1.1, 1.9, 3.2])) == {"mse", "mae", "r2"}
    with pytest.raises(ConfigError, match="Received: task='detect'"):
        M.compute_metrics("detect", [0], [0.5])


def test_importing_metrics_does_not_import_tensorflow():
    code = "import sys, extf.evaluation.metrics; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- plots --------------------------------------------------------------------------------------------------


def _plot_cases():
    yb, pb = _random_binary(seed=10, n=60)
    ym, pm = _random_multiclass(seed=11, n=60, k=3)
    rng = np.random.default_rng(12)
    images = rng.random((3, 8, 8, 1))
    masks = rng.integers(0, 3, (3, 8, 8))
    names = ["a", "b", "c"]
    return {
        "roc_binary": lambda p: plots.roc_plot(yb, pb, p, class_names=("neg", "pos")),
        "roc_multiclass": lambda p: plots.roc_plot(ym, pm, p, class_names=names),
        "pr_binary": lambda p: plots.pr_plot(yb, pb[:, None], p),
        "pr_multiclass": lambda p: plots.pr_plot(ym, pm, p),
        "confusion": lambda p: plots.confusion_matrix_plot(M.confusion(ym, pm.argmax(1), 3), names, p),
        "pred_vs_actual": lambda p: plots.predicted_vs_actual_plot(rng.normal(size=(10, 4)),
                                                                   rng.normal(size=(10, 4)), p),
        "segmentation": lambda p: plots.segmentation_overlay_plot(images, masks, np.eye(3)[masks], p, n=2),
    }


@pytest.mark.parametrize("name", list(_plot_cases()))
def test_plots_write_png(tmp_path, name):
    path = tmp_path / f"{name}.png"
    assert _plot_cases()[name](path) == path
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_binary_tasks_report_detection_precision_and_recall():
    from sklearn.metrics import precision_score, recall_score

    from extf.evaluation.metrics import compute_metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=200)
    p = np.clip(y * 0.3 + rng.uniform(0, 0.7, size=200), 0, 1)
    out = compute_metrics("binary", y, p, ("neg", "pos"), threshold=0.6)
    pred = (p >= 0.6).astype(int)
    assert out["precision"] == pytest.approx(precision_score(y, pred))
    assert out["recall"] == pytest.approx(recall_score(y, pred))
