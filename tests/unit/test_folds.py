"""k-fold cross-validation splits: stratified, seeded, never touching the test split, statistics per fold."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data.folds import check_folds, final_splits, fold_splits
from extf.data.splits import Meta, make_splits
from extf.errors import ConfigError


def iris_splits(standardize=True):
    from sklearn.datasets import load_iris

    data = load_iris()
    meta = Meta("iris", "multiclass", "tabular", (4,), class_names=tuple(data.target_names))
    return make_splits(data.data, data.target, meta, 0.16, 0.2, seed=1, standardize=standardize)


def test_folds_partition_train_and_validation_stratified_and_leave_the_test_split_alone():
    splits = iris_splits()
    folds = fold_splits(splits, 5, "auto", seed=3)
    pooled = set(splits.train.index) | set(splits.val.index)
    assert len(folds) == 5
    seen_val = []
    for fold in folds:
        assert set(fold.train.index) | set(fold.val.index) == pooled
        assert not set(fold.train.index) & set(fold.val.index)
        assert not (set(fold.train.index) | set(fold.val.index)) & set(splits.test.index)
        assert fold.test is splits.test
        assert min(np.bincount(fold.val.y, minlength=3)) >= 7  # 96 samples / 5 folds / 3 classes, stratified
        seen_val.extend(fold.val.index)
    assert sorted(seen_val) == sorted(pooled)  # each sample validates exactly once
    again = fold_splits(splits, 5, "auto", seed=3)
    assert all((a.val.index == b.val.index).all() for a, b in zip(folds, again))
    other = fold_splits(splits, 5, "auto", seed=4)
    assert any((a.val.index != b.val.index).any() for a, b in zip(folds, other))


def test_each_fold_standardizes_with_its_own_training_part_and_the_final_splits_with_train_and_val():
    splits = iris_splits()
    fold = fold_splits(splits, 3, "auto", seed=0)[0]
    assert fold.meta.extra["feature_mean"] == pytest.approx(fold.train.x.mean(axis=0).tolist())
    assert fold.meta.extra["feature_mean"] != pytest.approx(splits.meta.extra["feature_mean"])
    final = final_splits(splits)
    assert len(final.train) == len(splits.train) + len(splits.val)
    assert final.meta.extra["feature_mean"] == pytest.approx(final.train.x.mean(axis=0).tolist())


def test_a_tables_vocabulary_is_fitted_per_fold():
    from extf.data.tables import fit_statistics

    n = 120
    x = {"colour": np.array(["red", "blue", "green"] * 40, dtype=object), "size": np.arange(n, dtype="float64")}
    x["colour"][0] = "violet"  # one sample: the folds whose training part lacks it must not know it
    y = np.arange(n) % 2
    meta = Meta("t", "binary", "tabular", (2,), class_names=("a", "b"),
                extra={"table": {"columns": [{"name": "colour", "kind": "category"},
                                             {"name": "size", "kind": "numeric"}]}})
    splits = fit_statistics(make_splits(x, y, meta, 0.16, 0.2, seed=1), {})
    for fold in fold_splits(splits, 4, "auto", seed=0, dataset_cfg={}):
        vocab = next(c["vocabulary"] for c in fold.meta.extra["table"]["columns"] if c["name"] == "colour")
        assert set(vocab) == set(fold.train.x["colour"])


def test_regression_uses_kfold_and_sequences_need_time_series_folds():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    reg = make_splits(x, y, Meta("r", "regression", "tabular", (3,)), 0.16, 0.2, seed=1)
    assert check_folds(reg, 4) == "kfold"
    seq = make_splits(x, y, Meta("s", "regression", "sequence", (3,), ordered=True), 0.16, 0.2, seed=1)
    with pytest.raises(ConfigError, match="time order.*cv_method=time_series"):
        check_folds(seq, 4)
    folds = fold_splits(seq, 4, "time_series", seed=0)
    assert all(f.train.index.max() < f.val.index.min() for f in folds)  # validate on what comes after


@pytest.mark.parametrize("k, method, needle", [
    (1, "auto", "cv_folds must be 0"),
    (True, "auto", "cv_folds must be 0"),
    (45, "auto", "smallest class has"),
    (500, "auto", "more folds than"),
    (3, "random", "cv_method must be one of"),
])
def test_folds_that_cannot_be_made_are_one_message(k, method, needle):
    with pytest.raises(ConfigError, match=needle):
        check_folds(iris_splits(), k, method)


def test_stratified_folds_need_classes():
    rng = np.random.default_rng(0)
    reg = make_splits(rng.normal(size=(50, 2)), rng.normal(size=50), Meta("r", "regression", "tabular", (2,)),
                      0.16, 0.2, seed=1)
    with pytest.raises(ConfigError, match="needs class labels"):
        check_folds(reg, 3, "stratified")


@pytest.mark.slow  # trains (three 10-epoch fits of a tiny model): not in make test-fast
def test_a_folds_kept_epochs_are_early_stoppings_restored_epoch_else_the_whole_fit():
    """The final model after cross-validation trains for the folds' mean kept epochs (extf.tuning.trial.kept_epochs):
    a validation set the training makes worse stops early at patience, its weights from the first epoch."""
    import keras

    from extf.tuning.trial import kept_epochs

    x = np.linspace(-1, 1, 64, dtype="float32").reshape(-1, 1)

    def fitted(callbacks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        history = model.fit(x, x, validation_data=(x, -x), epochs=10, verbose=0, callbacks=callbacks).history
        return kept_epochs(callbacks, history), len(history["loss"])

    restoring = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    assert fitted([keras.callbacks.TerminateOnNaN(), restoring]) == (restoring.best_epoch + 1, 4)
    assert restoring.best_epoch == 0
    assert fitted([keras.callbacks.EarlyStopping(patience=3)]) == (4, 4)  # nothing restored: the model of epoch 4
    assert fitted([]) == (10, 10)
