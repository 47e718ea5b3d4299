"""Segmentation: the generated `shapes` dataset, the `fcn` U-Net, misfits refused early, and a study end to end."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from extf.data import load_dataset
from extf.data.datasets.shapes import SHAPE_CLASSES
from extf.errors import ConfigError
from extf.models import build_model, check_fits_data
from extf.tuning.trial import fit, make_callbacks

TINY = ["dataset=shapes", "dataset.n_samples=48", "dataset.image_size=16", "model=fcn", "model.filters=4",
        "trainer.batch_size=8"]


def shapes(**extra):
    return {"name": "shapes", "val_fraction": 0.16, "test_fraction": 0.2, "n_samples": 200, "image_size": 32,
            "max_shapes": 3, "noise": 0.1, **extra}


def test_shapes_dataset_shapes_and_metadata():
    splits = load_dataset(shapes(), seed=0)
    meta = splits.meta
    assert (meta.task, meta.modality, meta.input_shape) == ("segmentation", "image", (32, 32, 1))
    assert meta.class_names == ("background", "circle", "square", "triangle") == SHAPE_CLASSES
    for part in (splits.train, splits.val, splits.test):
        assert part.x.shape[1:] == (32, 32, 1) and part.x.dtype == np.float32
        assert part.y.shape == (len(part.x), 32, 32) and part.y.dtype.kind == "i"
    masks = np.concatenate([splits.train.y, splits.val.y, splits.test.y])
    assert set(np.unique(masks)) == {0, 1, 2, 3}  # every class occurs
    for mask in masks:  # 1 to 3 shapes, always some background
        shown = set(np.unique(mask)) - {0}
        assert 1 <= len(shown) <= 3 and (mask == 0).mean() > 0.3


def test_masks_match_the_images():
    from scipy import ndimage

    clean = load_dataset(shapes(noise=0.0, n_samples=60), seed=1)
    for x, y in zip(clean.train.x[..., 0], clean.train.y):
        background = x[y == 0]
        assert np.ptp(background) < 1e-6  # without noise the background is one flat level
        assert x[y > 0].min() >= background[0] + 0.2 - 1e-6  # every shape pixel is brighter
        for label in (1, 2, 3):
            regions, n = ndimage.label(y == label)
            for k in range(1, n + 1):
                region = regions == k
                assert np.ptp(x[region]) < 1e-6  # one shape, one brightness
                if label == 2:  # a square fills its bounding box
                    rows, cols = np.nonzero(region)
                    box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
                    assert region.sum() == box and abs(np.ptp(rows) - np.ptp(cols)) <= 1
    noisy = load_dataset(shapes(n_samples=60), seed=1)
    np.testing.assert_array_equal(noisy.train.y, clean.train.y)  # noise changes the pixels, not the masks
    assert np.std(noisy.train.x - clean.train.x) == pytest.approx(0.1, abs=0.01)


def test_shapes_splits_are_disjoint_and_seeded():
    a, b, c = (load_dataset(shapes(), seed=s) for s in (3, 3, 4))
    idx = np.concatenate([a.train.index, a.val.index, a.test.index])
    assert len(idx) == len(np.unique(idx)) == 200
    assert (len(a.test), len(a.val)) == (40, 32)
    assert not np.array_equal(np.sort(a.train.index), np.arange(len(a.train)))  # shuffled, not chronological
    np.testing.assert_array_equal(a.test.x, b.test.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.test.y, c.test.y)


@pytest.mark.parametrize("override, needle", [
    ("dataset.image_size=4", "`dataset.image_size` must be at least 8"),
    ("dataset.max_shapes=0", "`dataset.max_shapes` must be a positive integer"),
    ("dataset.noise=-0.1", "`dataset.noise` must be a number >= 0"),
    ("model.upsampling=cubic", "`model.upsampling` must be one of: bilinear, nearest, transpose"),
    ("model.depth=0", "`model.depth` must be a positive integer"),
])
def test_bad_shapes_and_fcn_values_are_refused(make_cfg, override, needle):
    with pytest.raises(ConfigError, match="Received") as info:
        make_cfg(["dataset=shapes", "model=fcn", override])
    assert needle in str(info.value)


@pytest.mark.slow  # trains: not in make test-fast
@pytest.mark.parametrize("extra", [[], ["model.upsampling=bilinear", "model.batch_norm=false",
                                        "model.dropout=0.2", "model.depth=1"]])
def test_fcn_builds_and_trains_one_epoch(make_cfg, tmp_path, extra):
    import keras

    keras.backend.clear_session()
    cfg = make_cfg([*TINY, *extra, "trainer.epochs=1"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    model = build_model(cfg, splits.meta)
    assert model.output_shape == (None, 16, 16, 4)
    assert model.layers[-1].get_config()["activation"] == "softmax"
    assert any(layer.name.startswith("skip_") for layer in model.layers)  # U-Net skip connections
    history = fit(model, cfg, splits, make_callbacks(cfg.callbacks, tmp_path)).history
    assert np.isfinite(history["loss"][0])
    assert {"accuracy", "mean_iou", "val_accuracy", "val_mean_iou"} <= set(history)
    probs = model.predict(splits.val.x[:2], verbose=0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)  # a distribution over classes per pixel


@pytest.mark.slow  # trains: not in make test-fast
def test_keras_mean_iou_is_the_test_mean_iu(make_cfg):
    """Keras' MeanIoU on softmax outputs (sparse_y_pred=False) and the notes' mean IU agree on the same data."""
    import keras

    from extf.evaluation.evaluate import evaluate_model

    keras.backend.clear_session()
    cfg = make_cfg([*TINY, "trainer.epochs=2"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    model = build_model(cfg, splits.meta)
    model.fit(splits.train.x, splits.train.y, epochs=2, batch_size=8, verbose=0)
    metrics, outputs = evaluate_model(model, splits, "test", splits.meta, 0.5, 8)
    assert outputs.shape == (*splits.test.y.shape, 4)
    assert metrics["mean_iou"] == pytest.approx(metrics["mean_iu"], abs=1e-5)
    assert metrics["accuracy"] == pytest.approx(metrics["pixel_accuracy"], abs=1e-5)


@pytest.mark.parametrize("overrides, needles", [
    (["dataset=shapes", "model=mlp"], ["segmentation dataset", "Use model=fcn", "model.name='mlp'"]),
    (["dataset=shapes", "model=cnn"], ["segmentation dataset", "model.name='cnn'"]),
    (["dataset=iris", "model=fcn"], ["model=fcn needs image data", "Received: input_shape=(4,)"]),
    (["dataset=sine", "model=fcn"], ["model=fcn needs image data", "input_shape=(20, 1)"]),
    (["dataset=digits", "model=fcn"], ["needs a segmentation dataset", "Received: task='multiclass'"]),
    (["dataset=shapes", "dataset.image_size=20", "model=fcn", "model.depth=3"],
     ["divisible by 2**depth = 8", "model.depth in [1, 2]", "Received: model.depth=3, input_shape=(20, 20, 1)"]),
])
def test_misfits_are_refused_before_training(make_cfg, overrides, needles):
    cfg = make_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        check_fits_data(cfg.model, load_dataset(cfg.dataset, cfg.seed).meta)
    for needle in needles:
        assert needle in str(info.value)


def test_geometric_augmentation_of_segmentation_is_refused(make_cfg):
    from extf.models.augmentation import check_augmentation

    cfg = make_cfg(["dataset=shapes", "model=fcn", "augmentation=image"])
    with pytest.raises(ConfigError, match="would no longer line up.*Received: augmentation.rotation_range=10.0"):
        check_augmentation(cfg.augmentation, "image", (32, 32, 1), "segmentation")
    check_augmentation({**cfg.augmentation, "name": "image", "rotation_range": 0.0, "width_shift_range": 0.0,
                        "height_shift_range": 0.0, "zoom_range": 0.0, "rescale": 2.0}, "image", (32, 32, 1),
                       "segmentation")  # rescaling moves no pixel


@pytest.mark.slow
def test_study_end_to_end_reports_segmentation_metrics(make_cfg):
    from extf.tuning.study import Study

    cfg = make_cfg([*TINY, "trainer.epochs=2", "tracking=none"])
    out = io.StringIO()
    summary = Study(cfg, out=out).run()
    metrics = summary["test_metrics"]
    assert summary["objective"] == "val_mean_iou"
    assert {"test_mean_iu", "test_pixel_accuracy", "test_mean_accuracy", "test_frequency_weighted_iu",
            "test_mean_iou", "test_loss"} <= set(metrics)
    assert 0.0 < metrics["test_mean_iu"] <= 1.0
    plots = {p.name for p in (Path(summary["study_dir"]) / "artifacts" / "plots").iterdir()}
    assert plots == {"segmentation_overlay.png"}
