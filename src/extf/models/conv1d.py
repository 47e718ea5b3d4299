"""1D convolutional network for sequences (timesteps, features):
[Conv1D -> Activation -> MaxPooling1D -> (Dropout)] x num_blocks, then GlobalAveragePooling1D or Flatten, Dense head.

Convolutions look at `kernel_size` neighbouring time steps with shared weights, so a pattern is found wherever it
occurs in the window; pooling and the deeper blocks (filters doubled) see longer stretches. `l2` > 0 adds
l2 * sum(w**2) of every Conv1D and Dense kernel (the output layer's included) to the loss and val_loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import ACTIVATIONS, FRACTION, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT, OneOf
from extf.config.schema import ModelConf
from extf.errors import ConfigError
from extf.models.checks import check_sequences


@dataclass
class Conf(ModelConf):
    filters: int  # doubled in each further block
    num_blocks: int
    kernel_size: int
    padding: str  # same | valid (each block shortens the sequence by kernel_size - 1)
    pool_size: int  # MaxPooling1D after each block; 1: no pooling
    activation: str
    dropout: float  # after each block
    pooling: str  # global_average (GlobalAveragePooling1D) | flatten: the head's input
    dense_units: int  # 0: no hidden dense layer before the output
    l2: float  # L2 penalty on every Conv1D and Dense kernel, the output layer's included; 0: none
    constraints: ClassVar = {
        "filters": POSITIVE_INT, "num_blocks": POSITIVE_INT, "kernel_size": POSITIVE_INT, "pool_size": POSITIVE_INT,
        "padding": OneOf({"valid", "same"}), "activation": ACTIVATIONS, "dropout": FRACTION,
        "pooling": OneOf({"global_average", "flatten"}), "dense_units": NON_NEGATIVE_INT, "l2": NON_NEGATIVE,
    }


def check(cfg, meta) -> None:
    """Sequences only."""
    check_sequences("conv1d", meta)


def build(cfg, inputs):
    import keras

    from extf.models import kernel_regularizer

    penalty = kernel_regularizer(cfg)
    x = inputs
    timesteps = int(inputs.shape[1])
    length = timesteps
    for i in range(cfg.num_blocks):
        if cfg.padding == "valid":
            length -= cfg.kernel_size - 1
        pooled = length // cfg.pool_size
        if length < 1 or pooled < 1:
            raise ConfigError(f"model=conv1d shortens the {timesteps}-step sequences below one step in block "
                              f"{i + 1}; use fewer blocks, padding=same, a smaller kernel_size / pool_size, or "
                              f"longer windows (dataset.window). Received: model.num_blocks={cfg.num_blocks}, "
                              f"model.kernel_size={cfg.kernel_size}, model.pool_size={cfg.pool_size}, "
                              f"model.padding={cfg.padding}, timesteps={timesteps}")
        x = keras.layers.Conv1D(cfg.filters * 2**i, cfg.kernel_size, padding=cfg.padding, kernel_regularizer=penalty,
                                name=f"conv_{i}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"activation_{i}")(x)
        if cfg.pool_size > 1:
            x = keras.layers.MaxPooling1D(cfg.pool_size, name=f"pool_{i}")(x)
            length = pooled
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    if cfg.pooling == "global_average":
        x = keras.layers.GlobalAveragePooling1D(name="global_average")(x)
    else:  # flatten keeps where in the window each pattern was found (e.g. the latest steps for forecasting)
        x = keras.layers.Flatten(name="flatten")(x)
    if cfg.dense_units > 0:
        x = keras.layers.Dense(cfg.dense_units, activation=cfg.activation, kernel_regularizer=penalty,
                               name="dense")(x)
    return x
