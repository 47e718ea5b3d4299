"""Model families built from config: `build_model(cfg, meta, hp) -> compiled keras.Model`.

One builder per family (mlp, cnn, rnn). Each takes the model config and the dataset metadata and returns an
uncompiled model; `build_model` applies the trial's hyperparameters, checks the model fits the data, adds the
task's output layer, and compiles with the configured optimizer, loss and metrics.
"""

from __future__ import annotations

from extf.errors import ConfigError

FAMILIES = ("mlp", "cnn", "rnn")


def check_fits_data(model_cfg, meta, batch_size: int | None = None) -> None:
    """Refuse a model family that cannot take this dataset's inputs, before TensorFlow is imported."""
    name = model_cfg.name
    shape = tuple(meta.input_shape)
    if name == "cnn" and len(shape) != 3:
        raise ConfigError(f"model=cnn needs image data of shape (height, width, channels), but dataset "
                          f"'{meta.name}' has inputs of shape {shape}. Use model=mlp (tabular) or model=rnn "
                          f"(sequences), or an image dataset such as dataset=digits. Received: input_shape={shape}")
    if name == "rnn" and len(shape) != 2:
        raise ConfigError(f"model=rnn needs sequence data of shape (timesteps, features), but dataset "
                          f"'{meta.name}' has inputs of shape {shape}. Use a sequence dataset such as dataset=sine "
                          f"or dataset=nabiya, or model=mlp. Received: input_shape={shape}")


def build_model(cfg, meta, hp=None):
    """Build and compile the model the (validated) config describes; `hp` values override config values."""
    import keras

    if hp is not None:
        from extf.tuning.space import apply_hyperparameters

        cfg = apply_hyperparameters(cfg, hp)
    model_cfg = cfg.model
    check_fits_data(model_cfg, meta)
    if model_cfg.name == "mlp":
        from extf.models.mlp import build
    elif model_cfg.name == "cnn":
        from extf.models.cnn import build
    elif model_cfg.name == "rnn":
        from extf.models.rnn import build
    else:  # validated earlier; kept for direct callers
        raise ConfigError(f"Unknown model family. Expected one of: {', '.join(FAMILIES)}. "
                          f"Received: model.name={model_cfg.name!r}")
    batch_size = cfg.trainer.batch_size if model_cfg.get("stateful", False) else None
    inputs = keras.Input(shape=tuple(meta.input_shape), batch_size=batch_size, name="inputs")
    x = inputs
    if cfg.get("augmentation") is not None:
        from extf.models.augmentation import build_augmentation

        aug_cfg = dict(cfg.augmentation)
        if aug_cfg.get("seed") is None:
            aug_cfg["seed"] = cfg.get("seed")
        augment = build_augmentation(aug_cfg, meta.input_shape)  # random layers act in training only
        if augment is not None:
            x = augment(x)
    features = build(model_cfg, preprocessing(x, meta))
    outputs = output_layer(meta)(features)
    model = keras.Model(inputs, outputs, name=f"{model_cfg.name}_{meta.name}")
    loss, metrics = loss_and_metrics(model_cfg, meta)
    model.compile(optimizer=make_optimizer(cfg.optimizer), loss=loss, metrics=metrics)
    return model


def preprocessing(inputs, meta):
    """The dataset's scaling as layers of the model, so a saved model takes raw inputs."""
    import keras
    import numpy as np

    x = inputs
    if "rescale" in meta.extra:
        x = keras.layers.Rescaling(meta.extra["rescale"], name="rescale")(x)
    if "feature_mean" in meta.extra:
        mean = np.asarray(meta.extra["feature_mean"], dtype="float32")
        std = np.asarray(meta.extra["feature_std"], dtype="float32")
        x = keras.layers.Normalization(mean=mean, variance=std**2, name="standardize")(x)
    return x


def output_layer(meta):
    """The output follows the task: sigmoid for binary, softmax for multi-class, linear for regression."""
    import keras

    if meta.task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name="output")
    if meta.task == "multiclass":
        return keras.layers.Dense(meta.n_classes, activation="softmax", name="output")
    return keras.layers.Dense(1, activation="linear", name="output")


def loss_and_metrics(model_cfg, meta):
    import keras

    defaults = {
        "binary": ("binary_crossentropy", ["accuracy", keras.metrics.AUC(name="auc")]),
        "multiclass": ("sparse_categorical_crossentropy", ["accuracy"]),
        "regression": ("mse", ["mae"]),
    }
    loss, metrics = defaults[meta.task]
    if model_cfg.get("loss"):
        loss = model_cfg.loss
    if model_cfg.get("metrics"):
        metrics = list(model_cfg.metrics)
    return loss, metrics


def make_optimizer(opt_cfg):
    """Instantiate the optimizer's allowlisted `_target_` with the remaining keys as arguments."""
    from omegaconf import OmegaConf

    from extf.config.instantiate import instantiate

    spec = OmegaConf.to_container(opt_cfg, resolve=True)
    spec.pop("name", None)
    return instantiate(spec, where="optimizer")


def initializer(name: str):
    """Keras initializer from a name; `uniform` / `normal` are the notes' (Keras 1) `init` values."""
    import keras

    if name == "uniform":
        return keras.initializers.RandomUniform(minval=-0.05, maxval=0.05)
    if name == "normal":
        return keras.initializers.RandomNormal(stddev=0.05)
    return name
