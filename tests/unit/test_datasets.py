"""Every dataset loads with the right shapes, metadata and disjoint splits; file loaders refuse bad files clearly."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data import load_dataset
from extf.data.datasets.nabiya import NABIYA_VOCAB, read_nabiya
from extf.errors import DataError
from tests.conftest import SHARED_DATA

EXPECTED = {  # name: (task, modality, input_shape, n_samples, n_classes)
    "digits": ("multiclass", "image", (8, 8, 1), 1797, 10),
    "iris": ("multiclass", "tabular", (4,), 150, 3),
    "wine": ("multiclass", "tabular", (13,), 178, 3),
    "breast_cancer": ("binary", "tabular", (30,), 569, 2),
    "sine": ("regression", "sequence", (20, 1), 1180, 0),
    "nabiya": ("multiclass", "sequence", (4, 1), 50, 14),
}


def ds(name, **extra):
    return {"name": name, "val_fraction": 0.16, "test_fraction": 0.2, **extra}


DEFAULTS = {"iris": {"standardize": True}, "wine": {"standardize": True}, "breast_cancer": {"standardize": True},
            "sine": {"n_points": 1200, "window": 20, "period": 50.0, "noise": 0.05},
            "nabiya": {"window": 4, "features": "index", "path": None}}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_shapes_and_disjoint_splits(name):
    task, modality, shape, n, n_classes = EXPECTED[name]
    splits = load_dataset(ds(name, **DEFAULTS.get(name, {})), seed=0)
    meta = splits.meta
    assert (meta.task, meta.modality, tuple(meta.input_shape), meta.n_classes) == (task, modality, shape, n_classes)
    parts = [splits.train, splits.val, splits.test]
    assert sum(len(p) for p in parts) == n
    for p in parts:
        assert p.x.shape[1:] == shape and len(p.x) == len(p.y) == len(p.index) > 0
        assert np.isfinite(p.x).all()
    idx = np.concatenate([p.index for p in parts])
    assert len(np.unique(idx)) == n, "splits overlap"
    assert abs(len(splits.test) / n - 0.2) < 0.02 and abs(len(splits.val) / n - 0.16) < 0.02
    if meta.ordered:  # chronological: train, then validation, then test
        assert splits.train.index.max() < splits.val.index.min() <= splits.val.index.max() < splits.test.index.min()
    elif task != "regression":  # stratified: every class in every split
        for p in parts:
            assert len(np.unique(p.y)) == n_classes


def test_splits_are_seeded():
    a, b, c = (load_dataset(ds("iris", standardize=True), seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.test.index, b.test.index)
    assert not np.array_equal(a.test.index, c.test.index)


def test_standardize_uses_training_statistics_only():
    splits = load_dataset(ds("wine", standardize=True), seed=0)
    mean = np.asarray(splits.meta.extra["feature_mean"])
    np.testing.assert_allclose(mean, splits.train.x.mean(axis=0), rtol=1e-5)
    everything = np.concatenate([splits.train.x, splits.val.x, splits.test.x])
    assert not np.allclose(mean, everything.mean(axis=0), rtol=1e-4)
    assert splits.train.x.mean() > 1.0  # the data stay raw: the model standardizes (see test_models)


def test_nabiya_is_the_shared_melody():
    shipped = read_nabiya()
    assert len(shipped) == 54 and set(shipped) <= set(NABIYA_VOCAB)
    if (SHARED_DATA / "nabiya.txt").exists():
        assert shipped == read_nabiya(str(SHARED_DATA / "nabiya.txt"))
    two = load_dataset(ds("nabiya", window=4, features="pitch_duration", path=None), seed=0)
    assert two.meta.input_shape == (4, 2)
    # targets are the next note after each window
    assert NABIYA_VOCAB[two.train.y[0]] == shipped[4]


def test_csv_loader(tmp_path):
    path = tmp_path / "data.csv"
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{'yes' if x + y > 0 else 'no'}" for x, y in rng.normal(size=(100, 2))]
    path.write_text("\n".join(rows))
    splits = load_dataset(ds("csv", path=str(path), target="label", features=None, task="auto", delimiter=",",
                             standardize=True), seed=0)
    assert splits.meta.task == "binary" and splits.meta.class_names == ("no", "yes")
    assert splits.train.x.shape[1:] == (2,)


def test_csv_missing_file_and_column(tmp_path):
    with pytest.raises(DataError, match="CSV file not found.*Received: dataset.path='nope.csv'"):
        load_dataset(ds("csv", path="nope.csv", target="y", features=None, task="auto", delimiter=","), seed=0)
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match="Target column 'label' is not in d.csv.*a, b"):
        load_dataset(ds("csv", path=str(path), target="label", features=None, task="auto", delimiter=","), seed=0)


def test_nan_in_data_is_refused(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 3))
    x[7, 1] = np.nan
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(60) % 2)
    with pytest.raises(DataError, match=r"1 NaN or infinite.*\[7, 1\]"):
        load_dataset(ds("npz", path=str(path), x_key="x", y_key="y", task="auto", standardize=False), seed=0)


def test_npz_wrong_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((10, 2)), y=np.zeros(10))
    with pytest.raises(DataError, match="Array 'x' is not in d.npz.*features"):
        load_dataset(ds("npz", path=str(path), x_key="x", y_key="y", task="auto", standardize=False), seed=0)


def _write_images(root, classes=("circle", "square"), per_class=10, size=20, mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(size, size) if mode == "L" else (size, size, 3)).astype("uint8")
            Image.fromarray(pixels, mode=mode).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_image_dir_loader(tmp_path):
    _write_images(tmp_path / "photos", classes=("a", "b", "c"), mode="RGB")
    cfg = ds("image_dir", path=str(tmp_path / "photos"), height=16, width=12, color_mode="rgb")
    splits = load_dataset(cfg, seed=0)
    assert splits.meta.class_names == ("a", "b", "c") and splits.meta.task == "multiclass"
    assert splits.meta.input_shape == (16, 12, 3) and splits.meta.extra["rescale"] == 1 / 255
    assert splits.train.inputs(2).shape == (2, 16, 12, 3)
    assert sum(len(p) for p in (splits.train, splits.val, splits.test)) == 30
    gray = load_dataset(ds("image_dir", path=str(tmp_path / "photos"), height=8, width=8, color_mode="grayscale"), 0)
    assert gray.meta.input_shape == (8, 8, 1)


def test_image_dir_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="Image folder not found.*Received: dataset.path="):
        load_dataset(ds("image_dir", path=str(tmp_path / "nope"), height=8, width=8, color_mode="rgb"), 0)
    _write_images(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match="at least 2 class sub-folders"):
        load_dataset(ds("image_dir", path=str(tmp_path / "one"), height=8, width=8, color_mode="rgb"), 0)
    _write_images(tmp_path / "bad")
    (tmp_path / "bad" / "square" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="Cannot read image.*broken.png"):
        load_dataset(ds("image_dir", path=str(tmp_path / "bad"), height=8, width=8, color_mode="grayscale"), 0)
