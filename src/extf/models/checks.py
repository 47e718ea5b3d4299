"""Checks that several model families share: does the dataset's input suit the family (before TensorFlow runs)."""

from __future__ import annotations

from extf.errors import ConfigError


def check_sequences(family: str, meta) -> None:
    """A family that reads (timesteps, features) windows."""
    shape = tuple(meta.input_shape)
    if len(shape) != 2:
        raise ConfigError(f"model={family} needs sequence data of shape (timesteps, features), but dataset "
                          f"'{meta.name}' has inputs of shape {shape}. Use a sequence dataset such as dataset=sine "
                          f"or dataset=nabiya, or model=mlp. Received: input_shape={shape}")


def check_halvings(shape: tuple, model: str, key: str, times: int, no_fit: str, other: str) -> None:
    """Encoder-decoders halve the image `times` times and double it back: both sides must divide by 2**times."""
    step = 2**times
    if shape[0] % step or shape[1] % step:
        fits = [d for d in range(1, 6) if shape[0] % 2**d == 0 and shape[1] % 2**d == 0]
        name = key.split(".")[-1]
        raise ConfigError(f"{model} halves the image {times} time(s) and doubles it back, so the image height and "
                          f"width must be divisible by 2**{name} = {step}; {shape[0]}x{shape[1]} is not. Use {key} "
                          f"in {fits or no_fit}{', ' + other if other else ''}. "
                          f"Received: {key}={times}, input_shape={shape}")
