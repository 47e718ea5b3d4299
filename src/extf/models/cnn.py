"""Convolutional network: [Conv2D -> (BatchNormalization) -> Activation -> MaxPooling2D] x num_blocks, Dense head.

Data always arrive channels_last (height, width, channels); with data_format=channels_first the model transposes
them once at the input, so the same dataset feeds both layouts. `l2` > 0 adds l2 * sum(w**2) of every Conv2D and
Dense kernel (the output layer's included) to the loss and val_loss (Keras' L2 regularizer; biases are not penalized).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import (
    ACTIVATIONS,
    FRACTION,
    INITIALIZERS,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    OneOf,
)
from extf.config.schema import ModelConf
from extf.errors import ConfigError


@dataclass
class Conf(ModelConf):
    filters: int  # doubled in each further block
    num_blocks: int
    kernel_size: int
    padding: str
    data_format: str
    pool_size: int
    activation: str
    kernel_initializer: str
    batch_norm: bool
    batch_norm_momentum: float  # moving statistics' momentum (Keras: 0.99, for large datasets)
    dense_units: int
    dropout: float
    l2: float  # L2 penalty on every Conv2D and Dense kernel, the output layer's included; 0: none
    constraints: ClassVar = {
        "filters": POSITIVE_INT, "num_blocks": POSITIVE_INT, "kernel_size": POSITIVE_INT, "pool_size": POSITIVE_INT,
        "padding": OneOf({"valid", "same"}), "data_format": OneOf({"channels_last", "channels_first"}),
        "activation": ACTIVATIONS, "kernel_initializer": INITIALIZERS, "batch_norm_momentum": FRACTION,
        "dense_units": NON_NEGATIVE_INT, "dropout": FRACTION, "l2": NON_NEGATIVE,
    }


def check(cfg, meta) -> None:
    """Images only."""
    shape = tuple(meta.input_shape)
    if len(shape) != 3:
        raise ConfigError(f"model=cnn needs image data of shape (height, width, channels), but dataset "
                          f"'{meta.name}' has inputs of shape {shape}. Use model=mlp (tabular) or model=rnn "
                          f"(sequences), or an image dataset such as dataset=digits. Received: input_shape={shape}")


def effective_data_format(requested: str) -> str:
    """channels_first convolutions only run on GPUs in TensorFlow (its CPU kernels are NHWC only); on a CPU the
    same network is built channels_last, which computes the same function, and a warning says so."""
    if requested != "channels_first":
        return requested
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return requested
    warnings.warn("model.data_format=channels_first: TensorFlow has no channels_first convolution kernels for the "
                  "CPU, so the layers run channels_last (the same computation). It takes effect on a GPU.",
                  stacklevel=2)
    return "channels_last"


def build(cfg, inputs):
    import keras

    from extf.models import initializer, kernel_regularizer

    penalty = kernel_regularizer(cfg)
    fmt = effective_data_format(cfg.data_format)
    x = inputs
    if fmt == "channels_first":
        x = keras.layers.Permute((3, 1, 2), name="to_channels_first")(x)
    height, width = int(inputs.shape[1]), int(inputs.shape[2])
    for i in range(cfg.num_blocks):
        if cfg.padding == "valid":
            height, width = height - cfg.kernel_size + 1, width - cfg.kernel_size + 1
        height, width = height // cfg.pool_size, width // cfg.pool_size
        if height < 1 or width < 1:
            raise ConfigError(f"model=cnn shrinks the {int(inputs.shape[1])}x{int(inputs.shape[2])} input below "
                              f"1x1 in block {i + 1}; use fewer blocks, padding=same, or a smaller kernel_size / "
                              f"pool_size. Received: model.num_blocks={cfg.num_blocks}, "
                              f"model.kernel_size={cfg.kernel_size}, model.pool_size={cfg.pool_size}, "
                              f"model.padding={cfg.padding}")
        x = keras.layers.Conv2D(cfg.filters * 2**i, cfg.kernel_size, padding=cfg.padding, data_format=fmt,
                                kernel_initializer=initializer(cfg.kernel_initializer), kernel_regularizer=penalty,
                                name=f"conv_{i}")(x)
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization(axis=1 if fmt == "channels_first" else -1,
                                                momentum=cfg.batch_norm_momentum, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"activation_{i}")(x)
        x = keras.layers.MaxPooling2D(cfg.pool_size, data_format=fmt, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(data_format=fmt, name="flatten")(x)
    if cfg.dropout > 0:
        x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
    if cfg.dense_units > 0:
        x = keras.layers.Dense(cfg.dense_units, activation=cfg.activation, kernel_regularizer=penalty,
                               name="dense")(x)
    return x
