"""Multi-layer perceptron: [Dense -> (BatchNormalization) -> Activation -> (Dropout)] x num_layers.

Layer 0 has `units`; layer i > 0 has `units_<i>` when set (a search space makes it conditional on num_layers).
num_layers=0 is no hidden layer: the output layer on the (normalized) inputs, a linear or logistic regression, which
a search over small tables may find best. `l2` > 0 adds l2 * sum(w**2) of every Dense kernel, the output layer's
included, to the loss (Keras' L2 regularizer; biases are not penalized, as in scikit-learn's LogisticRegression, whose
default C=1 on n training rows is l2 = 1 / (2 n)). The penalty is part of the loss and val_loss Keras reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import (
    ACTIVATIONS,
    FRACTION,
    INITIALIZERS,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
)
from extf.config.schema import ModelConf


@dataclass
class Conf(ModelConf):
    units: int  # units of the first hidden layer, and of the others unless units_<i> is set
    num_layers: int  # hidden layers; 0: the output layer on the inputs (linear / logistic regression)
    units_1: int | None  # units of hidden layer 1 (0-based); null: `units`
    units_2: int | None
    units_3: int | None
    activation: str
    kernel_initializer: str
    dropout: float
    batch_norm: bool
    batch_norm_momentum: float  # moving statistics' momentum (Keras: 0.99, for large datasets)
    l2: float  # L2 penalty on every Dense kernel, the output layer's included; 0: none
    constraints: ClassVar = {
        "units": POSITIVE_INT, "num_layers": NON_NEGATIVE_INT, "units_1": POSITIVE_INT, "units_2": POSITIVE_INT,
        "units_3": POSITIVE_INT, "activation": ACTIVATIONS, "kernel_initializer": INITIALIZERS,
        "dropout": FRACTION, "batch_norm_momentum": FRACTION, "l2": NON_NEGATIVE,
    }


TAKES_TABLE = True  # a table's columns reach it as one feature vector (extf.models.tables)


def build(cfg, inputs):
    import keras

    from extf.models import initializer, kernel_regularizer

    x = inputs
    if len(inputs.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    for i in range(cfg.num_layers):
        units = cfg.get(f"units_{i}") or cfg.units
        x = keras.layers.Dense(units, kernel_initializer=initializer(cfg.kernel_initializer),
                               kernel_regularizer=kernel_regularizer(cfg), name=f"dense_{i}")(x)
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"activation_{i}")(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    return x
