"""Convolutional network: [Conv2D -> (BatchNormalization) -> Activation -> MaxPooling2D] x num_blocks, Dense head.

Data always arrive channels_last (height, width, channels); with data_format=channels_first the model transposes
them once at the input, so the same dataset feeds both layouts.
"""

from __future__ import annotations

import warnings

from extf.errors import ConfigError


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

    from extf.models import initializer

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
                                kernel_initializer=initializer(cfg.kernel_initializer), name=f"conv_{i}")(x)
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization(axis=1 if fmt == "channels_first" else -1,
                                                momentum=cfg.batch_norm_momentum, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"activation_{i}")(x)
        x = keras.layers.MaxPooling2D(cfg.pool_size, data_format=fmt, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(data_format=fmt, name="flatten")(x)
    if cfg.dropout > 0:
        x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
    if cfg.dense_units > 0:
        x = keras.layers.Dense(cfg.dense_units, activation=cfg.activation, name="dense")(x)
    return x
