"""Autoencoder: an encoder squeezes the input into a `latent_dim` code, a decoder rebuilds the input from it.

kind=dense: Flatten -> Dense(units), Dense(units / 2), ... -> Dense(latent_dim) -> the same widths in reverse.
kind=conv (images): num_layers strided Conv2D (each halves height and width, filters doubled) -> Flatten ->
Dense(latent_dim) -> Dense + Reshape to the smallest feature map -> Conv2DTranspose back to the image size.
The code layer is linear (named "latent"); `build_model` adds the output of the input's shape and trains on the
inputs as targets (`extf.models.prepare_splits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import ACTIVATIONS, POSITIVE_INT, OneOf
from extf.config.schema import ModelConf
from extf.errors import ConfigError
from extf.models.checks import check_halvings


@dataclass
class Conf(ModelConf):
    kind: str  # dense (any data, flattened) | conv (images: strided Conv2D down, Conv2DTranspose up)
    latent_dim: int  # size of the code between encoder and decoder
    units: int  # dense: first encoder layer, halved in each further one (never below latent_dim)
    filters: int  # conv: first encoder layer, doubled in each further one
    num_layers: int  # encoder layers (the decoder mirrors them); conv: each halves the image height and width
    kernel_size: int  # conv only
    activation: str
    constraints: ClassVar = {
        "kind": OneOf({"dense", "conv"}), "latent_dim": POSITIVE_INT, "units": POSITIVE_INT,
        "filters": POSITIVE_INT, "num_layers": POSITIVE_INT, "kernel_size": POSITIVE_INT, "activation": ACTIVATIONS,
    }


RECONSTRUCTS = True  # learns to reproduce its input: it trains on splits whose targets are the inputs


def check(cfg, meta) -> None:
    """kind=conv: images whose sides halve num_layers times."""
    if cfg.kind != "conv":
        return
    shape = tuple(meta.input_shape)
    if len(shape) != 3 or meta.modality != "image":
        raise ConfigError(f"model=autoencoder with kind=conv needs image data of shape (height, width, channels), "
                          f"but dataset '{meta.name}' has {meta.modality} inputs of shape {shape}. Use "
                          f"model.kind=dense for tabular or sequence data, or an image dataset such as "
                          f"dataset=digits. Received: model.kind='conv', input_shape={shape}")
    check_halvings(shape, "model=autoencoder with kind=conv", "model.num_layers", cfg.num_layers,
                   "(none: use model.kind=dense)", "")


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
