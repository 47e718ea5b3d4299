"""Every model family builds from config and trains one epoch on tiny data; misfits fail before training."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data import load_dataset
from extf.errors import ConfigError
from extf.models import build_model, check_fits_data
from extf.tuning.trial import check_stateful_batches, fit, make_callbacks

CASES = [  # overrides, dataset
    (["model=mlp"], "iris"),
    (["model=mlp", "model.num_layers=0"], "breast_cancer"),
    (["model=mlp", "model.kernel_initializer=uniform", "model.activation=sigmoid", "model.batch_norm=true",
      "model.dropout=0.2"], "breast_cancer"),
    (["model=mlp", "model.kernel_initializer=normal", "model.activation=linear"], "digits"),
    (["model=cnn"], "digits"),
    (["model=cnn", "model.data_format=channels_first", "model.padding=valid", "model.num_blocks=1",
      "model.batch_norm=true"], "digits"),
    (["model=rnn", "model.cell=simple_rnn"], "sine"),
    (["model=rnn", "model.cell=gru", "model.num_layers=2", "model.dense_units=8"], "sine"),
    (["model=rnn", "model.cell=lstm", "model.stateful=true", "trainer.batch_size=2", "dataset.repeats=1"], "nabiya"),
    (["model=mlp", "optimizer=sgd", "optimizer.momentum=0.9", "optimizer.nesterov=true"], "wine"),
    (["model=mlp", "optimizer=rmsprop"], "wine"),
    (["model=mlp", "optimizer=adagrad"], "wine"),
]


@pytest.mark.slow  # trains: not in make test-fast
@pytest.mark.parametrize("overrides, dataset", CASES, ids=[f"{d}-{' '.join(o)}" for o, d in CASES])
def test_family_builds_and_trains_one_epoch(make_cfg, tmp_path, overrides, dataset):
    import keras

    keras.backend.clear_session()
    cfg = make_cfg([f"dataset={dataset}", *overrides, "trainer.epochs=1"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    check_stateful_batches(cfg, splits)
    model = build_model(cfg, splits.meta)
    history = fit(model, cfg, splits, make_callbacks(cfg.callbacks, tmp_path)).history
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    assert "val_loss" in history
    out_units = {"binary": 1, "multiclass": splits.meta.n_classes, "regression": 1}[splits.meta.task]
    assert model.output_shape[-1] == out_units
    assert model.layers[-1].get_config()["activation"] == {"binary": "sigmoid", "multiclass": "softmax",
                                                           "regression": "linear"}[splits.meta.task]
    if cfg.model.name == "mlp":  # num_layers hidden Dense layers, then the output layer (0: a linear model)
        assert sum(isinstance(layer, keras.layers.Dense) for layer in model.layers) == cfg.model.num_layers + 1


def test_stateful_rnn_has_fixed_batch_shape(make_cfg):
    cfg = make_cfg(["dataset=nabiya", "model=rnn", "model.stateful=true", "trainer.batch_size=1"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    model = build_model(cfg, splits.meta)
    assert model.input_shape == (1, 4, 2)  # pitch and duration
    assert model.get_layer("lstm_0").stateful


def test_cnn_on_tabular_data_is_refused(make_cfg):
    cfg = make_cfg(["dataset=iris", "model=cnn"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    with pytest.raises(ConfigError, match=r"model=cnn needs image data.*Received: input_shape=\(4,\)"):
        check_fits_data(cfg.model, splits.meta)


def test_rnn_on_images_is_refused(make_cfg):
    cfg = make_cfg(["dataset=digits", "model=rnn"])
    with pytest.raises(ConfigError, match="model=rnn needs sequence data"):
        check_fits_data(cfg.model, load_dataset(cfg.dataset, cfg.seed).meta)


def test_stateful_batch_size_must_divide_splits(make_cfg):
    cfg = make_cfg(["dataset=nabiya", "model=rnn", "model.stateful=true", "trainer.batch_size=32"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    with pytest.raises(ConfigError, match=r"Batch sizes that fit: \[1[],].*Received: trainer.batch_size=32"):
        check_stateful_batches(cfg, splits)


def test_cnn_that_shrinks_below_one_pixel_is_refused(make_cfg):
    cfg = make_cfg(["model=cnn", "model.num_blocks=4"])
    with pytest.raises(ConfigError, match="below 1x1"):
        build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)


def test_loss_and_metrics_overrides(make_cfg):
    cfg = make_cfg(["dataset=sine", "model=rnn", "model.loss=mae", "model.metrics=[mse]"])
    model = build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)
    assert model.loss == "mae"


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_weight_decay_reaches_the_optimizer(make_cfg, optimizer):
    cfg = make_cfg(["dataset=iris", "model=mlp", f"optimizer={optimizer}", "optimizer.weight_decay=0.001"])
    assert build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta).optimizer.weight_decay == 0.001
    cfg = make_cfg(["dataset=iris", "model=mlp", f"optimizer={optimizer}"])
    assert build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta).optimizer.weight_decay is None


@pytest.mark.parametrize("num_layers", [0, 2])
def test_l2_penalizes_every_dense_kernel_and_survives_a_safe_reload(make_cfg, tmp_path, num_layers):
    import keras

    cfg = make_cfg(["dataset=wine", "model=mlp", f"model.num_layers={num_layers}", "model.l2=0.01"])
    model = build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == num_layers + 1 and dense[-1].name == "output"
    assert all(layer.kernel_regularizer.get_config() == {"l2": 0.01} for layer in dense)
    assert all(layer.bias_regularizer is None for layer in dense)  # as scikit-learn: the intercept is free
    expected = sum(0.01 * float(np.sum(np.square(layer.kernel.numpy()))) for layer in dense)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)  # added to loss and val_loss
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert float(sum(reloaded.losses)) == pytest.approx(expected, rel=1e-5)
    cfg = make_cfg(["dataset=wine", "model=mlp", f"model.num_layers={num_layers}"])
    assert build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta).losses == []


@pytest.mark.parametrize("overrides, dataset", [
    (["model=cnn", "model.batch_norm=true"], "digits"),
    (["model=conv1d"], "sine"),
    (["model=rnn", "model.cell=lstm", "model.num_layers=2", "model.dense_units=8"], "sine"),
    (["model=rnn", "model.cell=gru"], "sine"),
])
def test_l2_of_the_other_families_penalizes_every_kernel_and_survives_a_safe_reload(make_cfg, tmp_path, overrides,
                                                                                       dataset):
    import keras

    cfg = make_cfg([f"dataset={dataset}", *overrides, "model.l2=0.01"])
    model = build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)
    kernels = [w for w in model.weights if w.path.rsplit("/", 1)[-1] in ("kernel", "recurrent_kernel")]
    layers = {w.path.split("/")[0] for w in kernels}
    assert "output" in layers and len(layers) >= 2  # a hidden layer's kernels and the output layer's
    expected = sum(0.01 * float(np.sum(np.square(w.numpy()))) for w in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)  # biases and batch norm are free
    path = tmp_path / "model.keras"
    model.save(path)
    assert float(sum(keras.saving.load_model(path, safe_mode=True).losses)) == pytest.approx(expected, rel=1e-5)
    cfg = make_cfg([f"dataset={dataset}", *overrides])
    assert build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta).losses == []


def test_bad_optimizer_argument_names_the_key(make_cfg):
    with pytest.raises(ConfigError, match="optimizer.momentumm.*learning_rate"):
        make_cfg(["model=mlp", "dataset=iris", "+optimizer.momentumm=0.9"])


def test_instantiate_errors_name_the_section():
    from extf.config.instantiate import instantiate

    with pytest.raises(ConfigError, match=r"Could not create `callbacks.es` from keras.callbacks.EarlyStopping"):
        instantiate({"_target_": "keras.callbacks.EarlyStopping", "patiencee": 3}, where="callbacks.es")
    with pytest.raises(ConfigError, match="allowlist"):
        instantiate({"_target_": "os.system", "command": "true"}, where="callbacks.x")


PROJECT_MODELS = """\
import keras


def model(cfg, meta, shape=None, classes=None):
    inputs = keras.Input(shape=shape or tuple(meta.input_shape))
    return keras.Model(inputs, keras.layers.Dense(classes or meta.n_classes, activation="softmax")(inputs))


def good(cfg, meta):
    return model(cfg, meta)


def not_a_model(cfg, meta):
    return "a model"


def other_input(cfg, meta):
    return model(cfg, meta, shape=(5,))


def other_classes(cfg, meta):
    return model(cfg, meta, classes=2)
"""


def test_a_projects_model_function_must_return_a_model_that_fits_the_data(tmp_path, monkeypatch):
    """extf.models.user checks what the project's model function returned before anything trains: one
    UserCodeError naming the function, what was expected and what it returned (the CLI's row of it:
    project-build-returns-no-model in test_bad_inputs.py)."""
    from omegaconf import OmegaConf

    from extf.data.splits import Meta
    from extf.errors import UserCodeError
    from extf.models import user

    (tmp_path / "shopm").mkdir()
    (tmp_path / "shopm" / "__init__.py").write_text("")
    (tmp_path / "shopm" / "models.py").write_text(PROJECT_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    meta = Meta("iris", "multiclass", "tabular", (4,), ("a", "b", "c"))
    compiled = []

    def build(name: str):
        cfg = OmegaConf.create({"model": {"_target_": f"shopm.models.{name}", "name": "mine"},
                                "allow_targets": ["shopm"]})
        return user.build(cfg, meta, compiled.append)

    model = build("good")
    assert compiled == [model] and model.output_shape == (None, 3)  # an uncompiled model is compiled as extf's
    for name, needles in {"not_a_model": ["shopm.models.not_a_model (model._target_) returned str, not a "
                                          "keras.Model", "Received: builtins.str"],
                          "other_input": ["returned a model whose input has shape (5,)", "inputs of shape (4,)",
                                          "keras.Input(shape=meta.input_shape)", "Received: input shape (5,)"],
                          "other_classes": ["returned a model with 2 outputs", "has 3 classes",
                                            "Received: output shape (None, 2)"]}.items():
        with pytest.raises(UserCodeError) as raised:
            build(name)
        assert all(n in str(raised.value) for n in needles), (name, str(raised.value))
    assert len(compiled) == 1


def test_model_standardizes_and_rescales_raw_inputs(make_cfg):
    import keras

    cfg = make_cfg(["dataset=wine", "model=mlp"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    model = build_model(cfg, splits.meta)
    scaled = keras.Model(model.input, model.get_layer("standardize").output).predict(splits.train.x, verbose=0)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-3)

    cfg = make_cfg(["dataset=digits", "model=cnn"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    assert splits.train.x.max() == 16.0  # raw sklearn pixels
    model = build_model(cfg, splits.meta)
    rescaled = keras.Model(model.input, model.get_layer("rescale").output).predict(splits.train.x[:8], verbose=0)
    assert rescaled.max() <= 1.0


@pytest.mark.slow  # trains: not in make test-fast
def test_tensorboard_callbacks_write_logs_in_the_trial_dir(make_cfg, tmp_path):
    cfg = make_cfg(["dataset=iris", "model=mlp", "trainer.epochs=1", "callbacks=tensorboard"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    fit(build_model(cfg, splits.meta), cfg, splits, make_callbacks(cfg.callbacks, tmp_path))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
