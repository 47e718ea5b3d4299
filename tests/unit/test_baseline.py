"""The scikit-learn baseline fitted beside a study on the same training split."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data.splits import Meta, make_splits
from extf.evaluation.baseline import fit_baseline


def table_splits(x, y, task, classes=(), modality="tabular", shape=None):
    meta = Meta("t", task, modality, shape or tuple(np.shape(x)[1:]) if not isinstance(x, dict) else (len(x),),
                class_names=tuple(classes))
    return make_splits(x, y, meta, 0.16, 0.2, seed=1)


def test_a_table_gets_a_standardized_logistic_regression_scored_on_validation_and_test():
    from sklearn.datasets import load_iris

    data = load_iris()
    base = fit_baseline(table_splits(data.data.astype("float32"), data.target, "multiclass", data.target_names))
    assert base.name.startswith("logistic regression")
    assert set(base.val) == {"val_accuracy"} and set(base.test) == {"test_accuracy"}
    assert base.val["val_accuracy"] >= 0.85 and base.test["test_accuracy"] >= 0.85


def test_binary_tables_get_an_auc_too():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    base = fit_baseline(table_splits(data.data, data.target, "binary", ("malignant", "benign")))
    assert base.test["test_auc"] > 0.95 and base.test["test_accuracy"] > 0.9


def test_raw_columns_with_text_missing_numbers_and_unseen_values_are_encoded_from_training_only():
    rng = np.random.default_rng(0)
    n = 600
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], n).astype(object)
    length = rng.normal(45, 5, n)
    y = (island == "Dream").astype(int) + (length > 47).astype(int)  # 3 classes from a text and a number
    length[rng.random(n) < 0.1] = np.nan
    columns = {"island": island, "length": length}
    splits = table_splits(columns, y, "multiclass", ("a", "b", "c"))
    splits.test.x["island"][:5] = "Atlantis"  # seen first at test time
    base = fit_baseline(splits)
    assert base.test["test_accuracy"] > 0.7 and base.val["val_accuracy"] > 0.7


def test_regression_gets_ridge_scored_by_mse_as_val_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=400)
    base = fit_baseline(table_splits(x, y, "regression"))
    assert base.name.startswith("ridge") and base.val["val_loss"] < 0.05 < np.var(y)
    assert set(base.test) == {"test_loss", "test_mae"}


def test_images_get_the_majority_class_and_segmentation_has_no_baseline():
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    x = np.zeros((100, 8, 8, 1), dtype="float32")
    base = fit_baseline(table_splits(x, y, "multiclass", ("a", "b", "c"), modality="image"))
    assert base.name == "the majority class"
    assert base.test["test_accuracy"] == pytest.approx(0.7, abs=0.06)
    masks = np.zeros((100, 8, 8), dtype="int64")
    assert fit_baseline(table_splits(x, masks, "segmentation", ("bg", "fg"), modality="image")) is None


def test_a_projects_tf_data_splits_get_no_baseline_rather_than_another_pass_over_its_data():
    tf = pytest.importorskip("tensorflow")
    from dataclasses import replace

    from extf.data.splits import DatasetSplit

    splits = table_splits(np.zeros((100, 2)), np.arange(100) % 2, "binary", ("a", "b"))
    data = tf.data.Dataset.from_tensor_slices((np.zeros((64, 2), "float32"), np.zeros(64, "int64")))
    assert fit_baseline(replace(splits, train=DatasetSplit(data, 64, np.arange(64)))) is None
