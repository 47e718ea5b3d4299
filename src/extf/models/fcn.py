"""Fully convolutional network for semantic segmentation: a small U-Net (Ronneberger et al., 2015).

Encoder: `depth` levels of [conv block -> MaxPooling2D], filters doubled at each level; a bottleneck conv block;
decoder: `depth` levels of [upsampling (Conv2DTranspose or UpSampling2D) -> Concatenate with the encoder block of
the same resolution (skip connection) -> conv block]. A conv block is two [Conv2D -> (BatchNormalization) ->
Activation]. The output is the input's height and width; `build_model` adds the per-pixel softmax (1x1 Conv2D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import ACTIVATIONS, FRACTION, POSITIVE_INT, OneOf
from extf.config.schema import ModelConf
from extf.errors import ConfigError
from extf.models.checks import check_halvings


@dataclass
class Conf(ModelConf):
    filters: int  # filters of the first level, doubled at each level down
    depth: int  # down/up levels; the image height and width must be divisible by 2**depth
    kernel_size: int
    activation: str
    batch_norm: bool
    batch_norm_momentum: float  # moving statistics' momentum (Keras: 0.99, for large datasets)
    dropout: float  # after each pooling and the bottleneck
    upsampling: str  # transpose (learned Conv2DTranspose) | nearest | bilinear (UpSampling2D)
    constraints: ClassVar = {
        "filters": POSITIVE_INT, "depth": POSITIVE_INT, "kernel_size": POSITIVE_INT, "activation": ACTIVATIONS,
        "batch_norm_momentum": FRACTION, "dropout": FRACTION,
        "upsampling": OneOf({"transpose", "nearest", "bilinear"}),
    }


SEGMENTS = True  # predicts a class per pixel: the family for segmentation datasets


def check(cfg, meta) -> None:
    """Images of a segmentation dataset whose sides halve `depth` times."""
    shape = tuple(meta.input_shape)
    if len(shape) != 3 or meta.modality != "image":
        raise ConfigError(f"model=fcn needs image data of shape (height, width, channels), but dataset "
                          f"'{meta.name}' has {meta.modality} inputs of shape {shape}. Use an image segmentation "
                          f"dataset such as dataset=shapes. Received: input_shape={shape}")
    if meta.task != "segmentation":
        raise ConfigError(f"model=fcn predicts a class for every pixel and needs a segmentation dataset (a mask "
                          f"per image), but dataset '{meta.name}' has {meta.task} targets. Use dataset=shapes, "
                          f"or model=cnn to classify whole images. Received: task={meta.task!r}")
    check_halvings(shape, "model=fcn", "model.depth", cfg.depth, "(none: resize the images)",
                   "or images of another size (dataset.image_size for dataset=shapes)")


def build(cfg, inputs):
    import keras

    x = inputs
    skips = []
    for level in range(cfg.depth):
        x = _conv_block(x, cfg.filters * 2**level, cfg, f"down_{level}")
        skips.append(x)  # full-resolution detail the decoder gets back: where exactly each boundary is
        x = keras.layers.MaxPooling2D(2, name=f"pool_{level}")(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{level}")(x)
    x = _conv_block(x, cfg.filters * 2**cfg.depth, cfg, "bottleneck")
    if cfg.dropout > 0:
        x = keras.layers.Dropout(cfg.dropout, name="dropout_bottleneck")(x)
    for level in reversed(range(cfg.depth)):
        filters = cfg.filters * 2**level
        if cfg.upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up_{level}")(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation=cfg.upsampling, name=f"up_{level}")(x)
        x = keras.layers.Concatenate(name=f"skip_{level}")([x, skips[level]])
        x = _conv_block(x, filters, cfg, f"up_block_{level}")
    return x


def _conv_block(x, filters: int, cfg, name: str):
    import keras

    for j in range(2):
        # a bias before BatchNormalization is cancelled by its mean subtraction
        x = keras.layers.Conv2D(filters, cfg.kernel_size, padding="same", use_bias=not cfg.batch_norm,
                                name=f"{name}_conv_{j}")(x)
        if cfg.batch_norm:
            x = keras.layers.BatchNormalization(momentum=cfg.batch_norm_momentum, name=f"{name}_batch_norm_{j}")(x)
        x = keras.layers.Activation(cfg.activation, name=f"{name}_activation_{j}")(x)
    return x
