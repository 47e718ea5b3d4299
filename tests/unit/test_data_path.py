"""One data path: every split (arrays, a table's columns, image files, a project's tf.data) reaches Keras as a
batched, prefetched tf.data pipeline with seeded shuffling; evaluation reads a split once."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data import user
from extf.data.splits import DatasetSplit, Split, array_dataset
from extf.errors import UserCodeError


def _labels(ds) -> list[int]:
    return [int(v) for _, y in ds for v in np.asarray(y)]


def test_an_array_split_is_batched_seeded_and_reshuffled_each_epoch():
    import tensorflow as tf

    x = np.arange(40, dtype="float32").reshape(20, 2)
    split = Split(x, np.arange(20), np.arange(20))
    ds = split.dataset(6, shuffle=True, seed=3)
    assert isinstance(ds, tf.data.Dataset)
    first, second = _labels(ds), _labels(ds)
    assert sorted(first) == list(range(20)) and first != second  # every row once, a new order each epoch
    assert first == _labels(split.dataset(6, shuffle=True, seed=3))  # the same orders for the same seed
    assert first != _labels(split.dataset(6, shuffle=True, seed=4))
    assert _labels(split.dataset(6)) == list(range(20))  # unshuffled: row order, as the labels of evaluation
    sizes = [len(y) for _, y in split.dataset(6)]
    assert sizes == [6, 6, 6, 2]
    for xb, yb in ds:  # inputs and labels stay paired
        assert np.array_equal(np.asarray(xb)[:, 0] // 2, np.asarray(yb))


def test_a_tables_columns_keep_strings_and_missing_cells():
    cols = {"island": np.array(["Biscoe", "", "Dream", "Torgersen"], dtype=object),
            "mass": np.array([3750.0, np.nan, 3250.0, 4100.0])}
    (xb, yb), = list(array_dataset(cols, np.array([0, 1, 2, 0]), 4))
    assert [v.decode() for v in np.asarray(xb["island"])] == ["Biscoe", "", "Dream", "Torgersen"]
    mass = np.asarray(xb["mass"])
    assert np.isnan(mass[1]) and mass[3] == 4100.0 and list(np.asarray(yb)) == [0, 1, 2, 0]


def test_one_pass_gives_what_keras_evaluate_and_predict_give():
    """Evaluation reads a split once and gets Keras' compiled loss and metrics, the outputs and the labels: the
    numbers model.evaluate and model.predict gave in two passes over the data before."""
    import keras

    from extf.evaluation.evaluate import evaluate_once

    rng = np.random.default_rng(0)
    x = rng.normal(size=(103, 5)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu",
                                                                    kernel_regularizer=keras.regularizers.l2(0.01)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")])
    # the seeded initial weights give outputs and metrics as far from trivial as trained ones (no training here)
    expected = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    metrics, outputs, labels = evaluate_once(model, array_dataset(x, y, 16))
    assert list(metrics) == list(expected)
    for key in expected:
        assert metrics[key] == pytest.approx(float(expected[key]), rel=1e-6), key
    np.testing.assert_allclose(outputs, model.predict(x, batch_size=16, verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(labels, y)
    keras.backend.clear_session()


# ---- a project's dataset callable returning tf.data splits
def streamed(kind: str = "ok", n: int = 60):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype("float64")
    y = (x[:, 0] > 0).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    parts = {"train": ds.take(36), "val": ds.skip(36).take(12), "test": ds.skip(48)}
    if kind == "batched":
        parts["train"] = parts["train"].batch(8)
    elif kind == "no_test":
        del parts["test"]
    elif kind == "x":
        parts = {"x": ds, "y": y}
    elif kind == "generator":  # a length tf.data does not know: counted once
        parts["val"] = parts["val"].filter(lambda a, b: True)
    return {**parts, "task": "binary"}


def _load(kind: str):
    cfg = {"_target_": "tests.unit.test_data_path.streamed", "name": "mine", "kind": kind,
           "val_fraction": 0.2, "test_fraction": 0.2}
    return user.load(cfg, 0, allow_targets=("tests",))


def test_a_projects_tf_data_splits_are_taken_as_they_are():
    splits = _load("ok")
    assert all(isinstance(s, DatasetSplit) for s in (splits.train, splits.val, splits.test))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 12, 12)
    meta = splits.meta
    assert meta.input_shape == (4,) and meta.modality == "tabular" and meta.class_names == ("0", "1")
    x = np.random.default_rng(1).normal(size=(60, 4))
    np.testing.assert_array_equal(splits.test.y, (x[48:, 0] > 0).astype("int64"))  # the test labels, in order
    xb, yb = next(iter(splits.train.dataset(10, shuffle=True, seed=2)))
    assert xb.dtype.name == "float32" and yb.dtype.name == "int64" and tuple(xb.shape) == (10, 4)
    assert _labels(splits.train.dataset(10, shuffle=True, seed=2)) == _labels(splits.train.dataset(10, True, 2))
    assert splits.train.inputs(3).shape == (3, 4)
    assert len(_load("generator").val) == 12


@pytest.mark.parametrize("kind, needles", [
    ("batched", ["train as a batched tf.data.Dataset", "dataset.unbatch()", "trainer.batch_size"]),
    ("no_test", ["not train, val and test all as tf.data.Dataset", "extf cannot split a stream",
                 "Received: {'train': '_TakeDataset', 'val': '_TakeDataset'}"]),
    ("x", ["not train, val and test all as tf.data.Dataset", "from_tensor_slices((x, y))"]),
])
def test_tf_data_that_cannot_work_is_one_clear_error(kind, needles):
    with pytest.raises(UserCodeError) as e:
        _load(kind)
    for needle in needles:
        assert needle in str(e.value)


@pytest.mark.slow
def test_a_projects_tf_data_trains_and_evaluates(make_cfg):
    """fit and evaluate take a project's tf.data splits on the same path as extf's own datasets."""
    import keras

    from extf.evaluation.evaluate import evaluate_model
    from extf.models import build_model
    from extf.tuning.trial import fit

    splits = _load("ok")
    cfg = make_cfg(["dataset=iris", "model=mlp", "trainer.epochs=2", "trainer.batch_size=8", "tracking=none"])
    model = build_model(cfg, splits.meta)
    history = fit(model, cfg, splits, []).history
    assert len(history["val_loss"]) == 2
    metrics, outputs = evaluate_model(model, splits, "test", splits.meta, 0.5, 8)
    assert outputs.shape[0] == 12 and 0.0 <= metrics["accuracy"] <= 1.0
    keras.backend.clear_session()


def test_a_projects_tf_data_is_described_for_mlflow_without_reading_it():
    from extf.data.lineage import dataset_inputs

    splits = _load("ok")
    inputs = dataset_inputs({"_target_": "tests.unit.test_data_path.streamed", "name": "mine"}, splits, None)
    assert [(i["context"], i["rows"]) for i in inputs] == [("train", 36), ("validation", 12), ("test", 12)]
    assert len({i["digest"] for i in inputs}) == 3 and inputs[0]["shape"] == [4]


def test_a_projects_tf_data_cannot_be_cut_into_folds():
    from extf.data.folds import check_folds
    from extf.errors import ConfigError

    with pytest.raises(ConfigError, match="extf cannot cut.*tuner.cv_folds=0"):
        check_folds(_load("ok"), 3)
