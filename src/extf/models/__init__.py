"""Model families built from config: `build_model(cfg, meta) -> compiled keras.Model`.

One module per family (mlp, cnn, rnn, fcn, autoencoder, conv1d), each with its YAML file in conf/model/: the module
exports `Conf` (the schema of its keys and their constraints), `build(cfg, inputs) -> features` and, optionally,
`check(cfg, meta)` (does the dataset suit it) and traits (`TAKES_TABLE`, `SEGMENTS`, `RECONSTRUCTS`). The families
are found from those modules (`extf.config.registry`); a project adds its own the same way (docs/extending.md).
`build_model` (given a config with the trial's values applied) checks the model fits the data, adds the dataset's
preprocessing and the task's output layer, and compiles with the configured optimizer, loss and metrics.

Families that reconstruct learn to reproduce their input instead of the dataset's targets: `prepare_splits` gives
them splits whose targets are the inputs (task `reconstruction`), so any dataset serves them unchanged.
"""

from __future__ import annotations

from types import ModuleType

from extf.config.instantiate import call_user, instantiate
from extf.config.registry import MODULE_KEY, builtin_options, option_module
from extf.errors import ConfigError


def families() -> dict[str, ModuleType]:
    """extf's own model families: name -> module."""
    return builtin_options("model")


def family(model_cfg, allow_targets=()) -> ModuleType:
    """The module of the family a (validated) model config names: extf's, or the project's (`_module_`)."""
    return option_module("model", model_cfg, allow_targets)


def builder(model_cfg, allow_targets=()):
    """The family's `build(cfg, inputs) -> features`; a project's (`_module_`) fails with one message naming it and
    showing its own traceback frames."""
    module = family(model_cfg, allow_targets)
    if MODULE_KEY not in model_cfg:
        return module.build
    target = f"{module.__name__}.build"
    return lambda cfg, inputs: call_user(module.build, target, f"model.{MODULE_KEY}", cfg, inputs)


def _trait(model_cfg, name: str, allow_targets=()) -> bool:
    if "_target_" in model_cfg:  # the project's model function: a plain model of the dataset's task
        return False
    return bool(getattr(family(model_cfg, allow_targets), name, False))


def prepare_splits(model_cfg, splits, allow_targets=()):
    """The splits this model family trains on: the dataset's, or its inputs as targets for a family that
    reconstructs (RECONSTRUCTS)."""
    from extf.data.splits import reconstruction_splits

    check_takes_table(model_cfg, splits.meta, allow_targets)
    if _trait(model_cfg, "RECONSTRUCTS", allow_targets) and splits.meta.task != "reconstruction":
        return reconstruction_splits(splits)
    return splits


def check_fits_data(model_cfg, meta, batch_size: int | None = None, allow_targets=()) -> None:
    """Refuse a model family that cannot take this dataset's inputs, before TensorFlow is imported."""
    if "_target_" in model_cfg:  # the project's model: extf.models.user checks what it returns
        return
    name = model_cfg.name
    module = family(model_cfg, allow_targets)
    check_takes_table(model_cfg, meta, allow_targets)
    if bool(getattr(module, "RECONSTRUCTS", False)) != (meta.task == "reconstruction"):
        raise ConfigError(f"model={name} and the task '{meta.task}' do not go together: model={name} "
                          f"reconstructs its input, so it trains on splits whose targets are their inputs, and "
                          f"only such a family does. Pass the splits through extf.models.prepare_splits(model_cfg, "
                          f"splits). Received: model.name={name!r}, task={meta.task!r}")
    if meta.task == "segmentation" and not getattr(module, "SEGMENTS", False):
        use = " or ".join(f"model={f}" for f, m in families().items() if getattr(m, "SEGMENTS", False))
        raise ConfigError(f"Dataset '{meta.name}' is a segmentation dataset: its targets are a class per pixel, "
                          f"and model={name} predicts one value per image. Use {use}, which predicts a class "
                          f"for every pixel. Received: model.name={name!r}, task='segmentation'")
    if hasattr(module, "check"):
        module.check(model_cfg, meta)


def check_takes_table(model_cfg, meta, allow_targets=()) -> None:
    """A table with category columns or missing cells reaches the model as its raw columns; only the families that
    say TAKES_TABLE turn them into one feature vector."""
    if "table" in meta.extra and not _trait(model_cfg, "TAKES_TABLE", allow_targets):
        kinds = sorted({c["kind"] for c in meta.extra["table"]["columns"]})
        takes = [f for f, m in families().items() if getattr(m, "TAKES_TABLE", False)]
        raise ConfigError(f"model={model_cfg.name} does not take a table's columns: dataset '{meta.name}' "
                          f"({meta.extra['table'].get('source', '')}) has category columns or missing cells, which "
                          f"the model's preprocessing layers encode and impute column by column, and only "
                          f"{', '.join(f'model={f}' for f in takes)} takes them. Use model={takes[0]}. Received: "
                          f"model.name={model_cfg.name!r}, column kinds {kinds}")


def build_model(cfg, meta):
    """Build and compile the model the (validated) config describes (a trial's values already applied)."""
    import keras

    model_cfg = cfg.model
    allow_targets = tuple(cfg.get("allow_targets") or ())
    if "_target_" in model_cfg:  # the project's own model function (extf.models.user)
        from extf.models import user

        def compile_like_extf(model):
            loss, metrics = loss_and_metrics(model_cfg, meta, allow_targets)
            model.compile(optimizer=make_optimizer(cfg.optimizer, allow_targets), loss=loss, metrics=metrics)

        return user.build(cfg, meta, compile_like_extf)
    check_fits_data(model_cfg, meta, allow_targets=allow_targets)
    build = builder(model_cfg, allow_targets)
    batch_size = cfg.trainer.batch_size if model_cfg.get("stateful", False) else None
    if "table" in meta.extra:  # one input per column; the preprocessing layers give one feature vector
        from extf.models.tables import encode_table, table_inputs

        inputs = table_inputs(meta.extra["table"])
        features = build(model_cfg, encode_table(inputs, meta.extra["table"]))
    else:
        inputs = keras.Input(shape=tuple(meta.input_shape), batch_size=batch_size, name="inputs")
        features = build(model_cfg, preprocessing(_augmented(inputs, cfg, meta), meta))
    outputs = add_output(features, meta, kernel_regularizer(model_cfg))
    model = keras.Model(inputs, outputs, name=f"{model_cfg.name}_{meta.name}")
    loss, metrics = loss_and_metrics(model_cfg, meta, allow_targets)
    model.compile(optimizer=make_optimizer(cfg.optimizer, allow_targets), loss=loss, metrics=metrics)
    return model


def _augmented(inputs, cfg, meta):
    """The inputs through the configured augmentation (random layers act in training only)."""
    x = inputs
    if cfg.get("augmentation") is not None:
        from extf.models.augmentation import build_augmentation

        aug_cfg = dict(cfg.augmentation)
        if aug_cfg.get("seed") is None:
            aug_cfg["seed"] = cfg.get("seed")
        augment = build_augmentation(aug_cfg, meta.input_shape)  # random layers act in training only
        if augment is not None:
            x = augment(x)
    return x


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


def add_output(features, meta, regularizer=None):
    """The task's output on the family's features; for reconstruction, an output of the input's shape. `regularizer`
    (a family's `l2`) penalizes the output layer's kernel of a classification or regression head."""
    if meta.task != "reconstruction":
        return output_layer(meta, regularizer)(features)
    import keras
    import numpy as np

    shape = tuple(int(d) for d in meta.input_shape)
    # sigmoid keeps reconstructions of [0, 1] targets (rescaled images) in range; other targets are unbounded
    activation = "sigmoid" if meta.extra.get("target_in_unit_range") else "linear"
    same_layout = len(features.shape) == len(shape) + 1 and tuple(features.shape[1:-1]) == shape[:-1]
    if same_layout and len(shape) == 3:  # a convolutional decoder back at the image size: channels per pixel
        return keras.layers.Conv2D(shape[-1], 3, padding="same", activation=activation, name="output")(features)
    if same_layout:  # tabular features (n,) from dense codes (units,): one value per feature
        return keras.layers.Dense(shape[-1], activation=activation, name="output")(features)
    x = keras.layers.Flatten(name="output_flatten")(features) if len(features.shape) > 2 else features
    x = keras.layers.Dense(int(np.prod(shape)), activation=activation, name="output_dense")(x)
    return keras.layers.Reshape(shape, name="output")(x)


def output_layer(meta, regularizer=None):
    """The output follows the task: sigmoid for binary, softmax for multi-class, linear for regression, and a
    softmax over the classes at every pixel (a 1x1 convolution) for segmentation."""
    import keras

    if meta.task == "segmentation":
        return keras.layers.Conv2D(meta.n_classes, 1, activation="softmax", kernel_regularizer=regularizer,
                                   name="output")
    if meta.task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=regularizer, name="output")
    if meta.task == "multiclass":
        return keras.layers.Dense(meta.n_classes, activation="softmax", kernel_regularizer=regularizer, name="output")
    return keras.layers.Dense(1, activation="linear", kernel_regularizer=regularizer, name="output")


# The task's loss and metrics by name: the names its model logs (val_<name>) are known before TensorFlow is imported.
# pixel accuracy is mostly background; mean IoU (Keras' MeanIoU over argmax classes, accumulated over the epoch)
# weighs every class alike, as the segmentation metrics on the test split do
TASK_LOSS_AND_METRICS = {
    "binary": ("binary_crossentropy", ("accuracy", "auc")),
    "multiclass": ("sparse_categorical_crossentropy", ("accuracy",)),
    "regression": ("mse", ("mae",)),
    "segmentation": ("sparse_categorical_crossentropy", ("accuracy", "mean_iou")),
    "reconstruction": ("mse", ("mse", "mae")),
}


def _task_metric(name: str, meta):
    """A metric of TASK_LOSS_AND_METRICS as Keras takes it: its name, or the Keras object extf makes under it."""
    import keras

    if name == "auc":
        return keras.metrics.AUC(name="auc")
    if name == "mean_iou":
        return keras.metrics.MeanIoU(meta.n_classes or 2, sparse_y_pred=False, name="mean_iou")
    return name


def loss_and_metrics(model_cfg, meta, allow_targets=()):
    """The task's loss and metrics, or model.loss / model.metrics (names, or `_target_` specs of metric classes,
    the project's own ones included)."""
    loss, names = TASK_LOSS_AND_METRICS[meta.task]
    metrics = [_task_metric(name, meta) for name in names]
    if model_cfg.get("loss"):
        loss = model_cfg.loss
    given = _given_metrics(model_cfg)
    if given:
        metrics = [instantiate(m, where=f"model.metrics[{i}]", allow_targets=allow_targets)
                   if isinstance(m, dict) else m for i, m in enumerate(given)]
    return loss, metrics


def _given_metrics(model_cfg) -> list:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(model_cfg.metrics, resolve=True) if model_cfg.get("metrics") else []


def metric_names(model_cfg, meta, allow_targets=(), build_metrics=True) -> set[str] | None:
    """The validation metrics (val_loss, val_<metric>) a model of this config logs while it trains, known before it
    is built; None for a project's model function, which may compile the model itself. Without TensorFlow
    (build_metrics=False): None as well when model.metrics has a `_target_` spec, whose name its object knows."""
    if "_target_" in model_cfg:
        return None
    given = _given_metrics(model_cfg)
    if any(isinstance(m, dict) for m in given):
        if not build_metrics:
            return None
        _, metrics = loss_and_metrics(model_cfg, meta, allow_targets)
    else:
        metrics = given or TASK_LOSS_AND_METRICS[meta.task][1]
    # Keras names a metric given as a string by that string, an object by its name (keras compile_utils.get_metric)
    return {"val_loss", *(f"val_{m if isinstance(m, str) else m.name}" for m in metrics)}


def make_optimizer(opt_cfg, allow_targets=()):
    """Instantiate the optimizer's allowlisted `_target_` with the remaining keys as arguments."""
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(opt_cfg, resolve=True)
    spec.pop("name", None)
    return instantiate(spec, where="optimizer", allow_targets=allow_targets)


def kernel_regularizer(model_cfg):
    """Keras' L2 regularizer for a family's `l2` key (> 0), else None (no penalty; families without the key)."""
    l2 = float(model_cfg.get("l2") or 0.0)
    if l2 <= 0:
        return None
    import keras

    return keras.regularizers.L2(l2)


def initializer(name: str):
    """Keras initializer from a name; `uniform` / `normal` are the notes' (Keras 1) `init` values."""
    import keras

    if name == "uniform":
        return keras.initializers.RandomUniform(minval=-0.05, maxval=0.05)
    if name == "normal":
        return keras.initializers.RandomNormal(stddev=0.05)
    return name


def __getattr__(name: str):
    """`FAMILIES`: the names of extf's own families, found from their modules when first asked for."""
    if name == "FAMILIES":
        return tuple(families())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
