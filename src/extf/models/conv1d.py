"""1D convolutional network for sequences (timesteps, features):
[Conv1D -> Activation -> MaxPooling1D -> (Dropout)] x num_blocks, then GlobalAveragePooling1D or Flatten, Dense head.

Convolutions look at `kernel_size` neighbouring time steps with shared weights, so a pattern is found wherever it
occurs in the window; pooling and the deeper blocks (filters doubled) see longer stretches.
"""

from __future__ import annotations

from extf.errors import ConfigError


def build(cfg, inputs):
    import keras

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
        x = keras.layers.Conv1D(cfg.filters * 2**i, cfg.kernel_size, padding=cfg.padding, name=f"conv_{i}")(x)
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
        x = keras.layers.Dense(cfg.dense_units, activation=cfg.activation, name="dense")(x)
    return x
