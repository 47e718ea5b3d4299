"""Multi-layer perceptron: [Dense -> (BatchNormalization) -> Activation -> (Dropout)] x num_layers.

Layer 0 has `units`; layer i > 0 has `units_<i>` when set (a search space makes it conditional on num_layers)."""

from __future__ import annotations


def build(cfg, inputs):
    import keras

    from extf.models import initializer

    x = inputs
    if len(inputs.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    for i in range(cfg.num_layers):
        units = cfg.get(f"units_{i}") or cfg.units
        x = keras.layers.Dense(units, kernel_initializer=initializer(cfg.kernel_initializer), name=f"dense_{i}")(x)
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"activation_{i}")(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    return x
