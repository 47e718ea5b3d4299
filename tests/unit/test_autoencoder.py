"""Autoencoders: any dataset becomes a reconstruction task (inputs as targets, on the model's own scale); dense and
convolutional autoencoders build, train and are tested with regression metrics."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from extf.data import load_dataset
from extf.data.splits import reconstruction_splits
from extf.errors import ConfigError
from extf.models import build_model, check_fits_data, prepare_splits
from extf.tuning.trial import fit, make_callbacks


def splits_for(cfg):
    return prepare_splits(cfg.model, load_dataset(cfg.dataset, cfg.seed))


def test_digits_targets_are_the_rescaled_inputs(make_cfg):
    cfg = make_cfg(["dataset=digits", "model=autoencoder"])
    raw = load_dataset(cfg.dataset, cfg.seed)
    splits = splits_for(cfg)
    meta = splits.meta
    assert (meta.task, meta.class_names, meta.input_shape) == ("reconstruction", (), (8, 8, 1))
    assert meta.extra["source_task"] == "multiclass" and meta.extra["target_in_unit_range"] is True
    for name in ("train", "val", "test"):
        part, before = getattr(splits, name), getattr(raw, name)
        np.testing.assert_array_equal(part.x, before.x)  # the model still takes raw 0..16 pixels
        np.testing.assert_array_equal(part.index, before.index)
        np.testing.assert_allclose(part.y, before.x / 16.0)
    assert splits.train.y.max() == 1.0 and raw.meta.task == "multiclass"  # the cached splits are untouched
    assert prepare_splits(cfg.model, splits) is splits  # already reconstruction splits


def test_targets_are_what_the_model_sees_after_its_preprocessing(make_cfg):
    import keras

    for dataset, layer in (("digits", "rescale"), ("wine", "standardize")):
        keras.backend.clear_session()
        cfg = make_cfg([f"dataset={dataset}", "model=autoencoder"])
        splits = splits_for(cfg)
        model = build_model(cfg, splits.meta)
        seen = keras.Model(model.input, model.get_layer(layer).output).predict(splits.val.x, verbose=0)
        np.testing.assert_allclose(seen, splits.val.y, atol=1e-5)
    # standardized features are unbounded: no sigmoid, or they could never be reached
    assert splits.meta.extra["target_in_unit_range"] is False
    assert model.get_layer("output").get_config()["activation"] == "linear"


@pytest.mark.slow  # trains: not in make test-fast
@pytest.mark.parametrize("dataset, extra, output_shape, activation", [
    ("digits", ["model.kind=dense"], (None, 8, 8, 1), "sigmoid"),
    ("digits", ["model.kind=conv", "model.num_layers=3"], (None, 8, 8, 1), "sigmoid"),
    ("shapes", ["dataset.n_samples=40", "dataset.image_size=16", "model.kind=conv"], (None, 16, 16, 1), "linear"),
    ("wine", ["model.kind=dense", "model.num_layers=1"], (None, 13), "linear"),
    ("sine", ["model.kind=dense", "model.activation=tanh"], (None, 20, 1), "linear"),
])
def test_autoencoder_builds_and_trains_one_epoch(make_cfg, tmp_path, dataset, extra, output_shape, activation):
    import keras

    keras.backend.clear_session()
    cfg = make_cfg([f"dataset={dataset}", "model=autoencoder", "model.latent_dim=4", *extra, "trainer.epochs=1"])
    splits = splits_for(cfg)
    model = build_model(cfg, splits.meta)
    assert model.output_shape == output_shape == (None, *splits.meta.input_shape)
    assert model.get_layer("latent").output.shape[-1] == 4  # the bottleneck
    # a dense code is decoded into a flat vector, then reshaped to the input's shape
    names = {layer.name for layer in model.layers}
    output_layer = model.get_layer("output_dense" if "output_dense" in names else "output")
    assert output_layer.get_config()["activation"] == activation
    history = fit(model, cfg, splits, make_callbacks(cfg.callbacks, tmp_path)).history
    assert np.isfinite(history["loss"][0])
    assert {"mse", "mae", "val_loss", "val_mse", "val_mae"} <= set(history)


@pytest.mark.slow  # trains: not in make test-fast
def test_loss_decreases_over_a_few_epochs(make_cfg):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    cfg = make_cfg(["dataset=digits", "model=autoencoder", "model.kind=conv"])
    splits = splits_for(cfg)
    model = build_model(cfg, splits.meta)
    history = model.fit(splits.train.x, splits.train.y, validation_data=(splits.val.x, splits.val.y), epochs=5,
                        batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    # a trained autoencoder beats reconstructing every image as the mean training image
    baseline = np.mean((splits.val.y - splits.train.y.mean(axis=0)) ** 2)
    assert history["val_loss"][-1] < baseline


@pytest.mark.parametrize("overrides, needles", [
    (["dataset=iris", "model=autoencoder", "model.kind=conv"],
     ["kind=conv needs image data", "Use model.kind=dense", "Received: model.kind='conv', input_shape=(4,)"]),
    (["dataset=sine", "model=autoencoder", "model.kind=conv"], ["kind=conv needs image data", "(20, 1)"]),
    (["dataset=digits", "model=autoencoder", "model.kind=conv", "model.num_layers=4"],
     ["divisible by 2**num_layers = 16", "model.num_layers in [1, 2, 3]", "Received: model.num_layers=4"]),
])
def test_misfits_are_refused_before_training(make_cfg, overrides, needles):
    cfg = make_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        check_fits_data(cfg.model, splits_for(cfg).meta)
    for needle in needles:
        assert needle in str(info.value)


def test_targets_and_family_must_match(make_cfg):
    cfg = make_cfg(["dataset=digits", "model=autoencoder"])
    raw = load_dataset(cfg.dataset, cfg.seed)
    with pytest.raises(ConfigError, match="prepare_splits.*Received: model.name='autoencoder', task='multiclass'"):
        check_fits_data(cfg.model, raw.meta)
    mlp = make_cfg(["dataset=digits", "model=mlp"])
    with pytest.raises(ConfigError, match="Received: model.name='mlp', task='reconstruction'"):
        check_fits_data(mlp.model, reconstruction_splits(raw).meta)


def test_augmentation_of_reconstructed_inputs_is_refused(make_cfg):
    from extf.models.augmentation import check_augmentation

    cfg = make_cfg(["dataset=digits", "model=autoencoder", "augmentation=image"])
    with pytest.raises(ConfigError, match="reconstruction targets"):
        check_augmentation(cfg.augmentation, "image", (8, 8, 1), "reconstruction")


@pytest.mark.slow
def test_study_end_to_end_reports_reconstruction_metrics(make_cfg):
    from extf.tuning.study import Study

    cfg = make_cfg(["dataset=digits", "model=autoencoder", "model.kind=conv", "trainer.epochs=3",
                    "tracking=none"])
    summary = Study(cfg, out=io.StringIO()).run()
    metrics = summary["test_metrics"]
    assert summary["objective"] == "val_loss"
    assert {"test_mse", "test_mae", "test_r2", "test_loss"} <= set(metrics)
    assert metrics["test_mse"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    assert 0.0 < metrics["test_mse"] < 0.2
    plots = {p.name for p in (Path(summary["study_dir"]) / "artifacts" / "plots").iterdir()}
    assert plots == {"reconstructions.png", "predicted_vs_actual.png"}
