"""Autoencoder: an encoder squeezes the input into a `latent_dim` code, a decoder rebuilds the input from it.

kind=dense: Flatten -> Dense(units), Dense(units / 2), ... -> Dense(latent_dim) -> the same widths in reverse.
kind=conv (images): num_layers strided Conv2D (each halves height and width, filters doubled) -> Flatten ->
Dense(latent_dim) -> Dense + Reshape to the smallest feature map -> Conv2DTranspose back to the image size.
The code layer is linear (named "latent"); `build_model` adds the output of the input's shape and trains on the
inputs as targets (`extf.models.prepare_splits`).
"""

from __future__ import annotations


def build(cfg, inputs):
    if cfg.kind == "conv":
        return _conv(cfg, inputs)
    return _dense(cfg, inputs)


def _dense(cfg, inputs):
    import keras

    x = keras.layers.Flatten(name="flatten")(inputs) if len(inputs.shape) > 2 else inputs
    # a funnel: each layer half as wide as the one before, never narrower than the code
    widths = [max(cfg.units // 2**i, cfg.latent_dim) for i in range(cfg.num_layers)]
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation=cfg.activation, name=f"encoder_dense_{i}")(x)
    x = keras.layers.Dense(cfg.latent_dim, name="latent")(x)
    for i, width in enumerate(reversed(widths)):
        x = keras.layers.Dense(width, activation=cfg.activation, name=f"decoder_dense_{i}")(x)
    return x


def _conv(cfg, inputs):
    import keras

    x = inputs
    for i in range(cfg.num_layers):
        x = keras.layers.Conv2D(cfg.filters * 2**i, cfg.kernel_size, strides=2, padding="same",
                                activation=cfg.activation, name=f"encoder_conv_{i}")(x)
    smallest = tuple(int(d) for d in x.shape[1:])
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(cfg.latent_dim, name="latent")(x)
    x = keras.layers.Dense(smallest[0] * smallest[1] * smallest[2], activation=cfg.activation,
                           name="decoder_dense")(x)
    x = keras.layers.Reshape(smallest, name="decoder_reshape")(x)
    for i in reversed(range(cfg.num_layers)):
        # strides 2 with padding=same doubles the size exactly, back to the encoder's sizes in reverse
        x = keras.layers.Conv2DTranspose(cfg.filters * 2**i, cfg.kernel_size, strides=2, padding="same",
                                         activation=cfg.activation, name=f"decoder_conv_{i}")(x)
    return x
