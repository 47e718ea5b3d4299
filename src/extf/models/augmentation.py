"""Image augmentation: the Keras 1 `ImageDataGenerator` options as Keras 3 preprocessing layers.

`build_augmentation(aug, input_shape)` returns a `keras.Sequential` named "augmentation" to place right after
the model input, or None when there is nothing to do. Its random layers transform images only when the model
runs with `training=True` (`fit`); `predict` / `evaluate` pass images through, and `rescale` applies in both,
as the generator's `standardize` did. `check_augmentation` rejects bad values before TensorFlow is imported.

Option -> layer (ImageDataGenerator semantics kept; each factor conversion is explained where it is made):
rotation_range -> RandomRotation, width/height_shift_range -> RandomTranslation, shear_range -> RandomShear,
zoom_range -> RandomZoom, horizontal/vertical_flip -> RandomFlip, rescale -> Rescaling (last, as in Keras 1).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from extf.errors import ConfigError

NAMES = ("none", "image")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
MAX_ROTATION = 180.0  # degrees; [-180, 180] already covers every angle
MAX_SHEAR = math.pi / 4  # radians; RandomShear factors must be <= 1 = tan(pi/4)

# The values that make each option a no-op (also the contents of conf/augmentation/none.yaml).
NEUTRAL: dict[str, Any] = {
    "rotation_range": 0.0,
    "width_shift_range": 0.0,
    "height_shift_range": 0.0,
    "shear_range": 0.0,
    "zoom_range": 0.0,
    "horizontal_flip": False,
    "vertical_flip": False,
    "rescale": None,
}
DEFAULTS: dict[str, Any] = {"name": "none", **NEUTRAL, "fill_mode": "nearest", "cval": 0.0, "seed": None}
KEYS = tuple(DEFAULTS)


def _get(aug: Mapping, key: str) -> Any:
    """Read one option; a missing key means its default, so partial dicts from callers still work."""
    return aug.get(key, DEFAULTS[key])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _active_options(aug: Mapping) -> dict[str, Any]:
    """The options set to something other than their neutral value (rescale=1 is neutral too)."""
    active = {k: _get(aug, k) for k in NEUTRAL if _get(aug, k) != NEUTRAL[k]}
    if active.get("rescale") == 1:
        del active["rescale"]
    return active


def _fail(key: str, value: Any, problem: str) -> ConfigError:
    return ConfigError(f"{problem} Received: augmentation.{key}={value!r}")


def _check_values(aug: Mapping) -> None:
    """Raise ConfigError for the first option outside what ImageDataGenerator / the Keras layers accept."""
    name = _get(aug, "name")
    if name not in NAMES:
        raise _fail("name", name, f"Unknown augmentation. Expected one of: {', '.join(NAMES)}. Select it "
                                  f"with augmentation=image (or augmentation=none).")
    unknown = sorted(set(aug) - set(KEYS))
    if unknown:
        key = unknown[0]
        raise _fail(key, aug[key], f"Unknown augmentation option {key!r}. Expected only: {', '.join(KEYS)}. "
                                   f"Remove it or fix its spelling.")
    rotation = _get(aug, "rotation_range")
    if not _is_number(rotation) or not 0 <= rotation <= MAX_ROTATION:
        raise _fail("rotation_range", rotation,
                    f"augmentation.rotation_range is the maximum rotation in degrees (images turn by a "
                    f"random angle in [-r, r]); it must be a number in [0, {MAX_ROTATION:g}]. Use e.g. 10, "
                    f"or 0 for no rotation.")
    for key, side in (("width_shift_range", "width"), ("height_shift_range", "height")):
        shift = _get(aug, key)
        if not _is_number(shift) or not 0 <= shift < 1:
            raise _fail(key, shift, f"augmentation.{key} is the maximum shift as a fraction of the image "
                                    f"{side}; it must be a number in [0, 1). Use e.g. 0.1, or 0 for none.")
    shear = _get(aug, "shear_range")
    if not _is_number(shear) or not 0 <= shear <= MAX_SHEAR:
        raise _fail("shear_range", shear,
                    f"augmentation.shear_range is the maximum shear angle in radians; it must be a number in "
                    f"[0, pi/4 = {MAX_SHEAR:.4f}] (Keras RandomShear shears by at most tan(pi/4) = 1). Use "
                    f"e.g. 0.2, or 0 for no shear.")
    zoom = _get(aug, "zoom_range")
    if not _is_number(zoom) or not 0 <= zoom < 1:
        raise _fail("zoom_range", zoom,
                    "augmentation.zoom_range x zooms each axis by a random factor in [1-x, 1+x]; it must be "
                    "a number in [0, 1). Use e.g. 0.1, or 0 for no zoom.")
    for key in ("horizontal_flip", "vertical_flip"):
        if not isinstance(_get(aug, key), bool):
            raise _fail(key, _get(aug, key), f"augmentation.{key} must be true or false.")
    rescale = _get(aug, "rescale")
    if rescale is not None and (not _is_number(rescale) or rescale == 0):
        raise _fail("rescale", rescale,
                    "augmentation.rescale multiplies every pixel (e.g. 0.00392 = 1/255 for 0-255 images); it "
                    "must be a non-zero number, or null for no rescaling.")
    fill_mode = _get(aug, "fill_mode")
    if fill_mode not in FILL_MODES:
        raise _fail("fill_mode", fill_mode,
                    f"augmentation.fill_mode says how to fill pixels moved in from outside the image. "
                    f"Expected one of: {', '.join(FILL_MODES)}.")
    cval = _get(aug, "cval")
    if not _is_number(cval):
        raise _fail("cval", cval, "augmentation.cval is the fill value for fill_mode=constant; it must be a "
                                  "finite number, e.g. 0.0.")
    seed = _get(aug, "seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise _fail("seed", seed, "augmentation.seed must be a non-negative integer, or null for a random "
                                  "seed.")


# Targets that are images themselves (masks, the input itself): a random transform of the input would no longer
# line up with them.
PIXEL_TARGET_TASKS = ("segmentation", "reconstruction")


def check_augmentation(aug: Mapping, modality: str, input_shape, task: str | None = None) -> None:
    """Refuse bad values, image augmentation of data that are not images, and random transforms of inputs whose
    targets are pixel-aligned (segmentation masks, reconstructions); imports no TensorFlow."""
    _check_values(aug)
    name = _get(aug, "name")
    shape = tuple(input_shape)
    moving = {k: v for k, v in _active_options(aug).items() if k != "rescale"}
    if name == "image" and task in PIXEL_TARGET_TASKS and moving:
        key, value = next(iter(moving.items()))
        raise _fail(key, value, f"augmentation=image would move the pixels of the inputs but not of their "
                                f"{task} targets (the layers transform inputs only), so image and target would "
                                f"no longer line up. Use augmentation=none, or keep only augmentation.rescale.")
    if name == "image" and (modality != "image" or len(shape) != 3):
        raise ConfigError(f"augmentation=image transforms images of shape (height, width, channels), but the "
                          f"dataset is {modality} data with inputs of shape {shape}. Use augmentation=none, "
                          f"or an image dataset such as dataset=digits. Received: "
                          f"augmentation.name={name!r}, modality={modality!r}, input_shape={shape}")
    active = _active_options(aug)
    if name == "none" and active:
        # augmentation=none builds nothing, so a value set here (or tuned by a search space) would be lost.
        key, value = next(iter(active.items()))
        raise _fail(key, value, f"augmentation=none ignores augmentation.{key}. Select augmentation=image to "
                                f"use it, or leave it at its neutral value {NEUTRAL[key]!r}.")


def build_augmentation(aug: Mapping, input_shape):
    """The augmentation layer for channels_last images of `input_shape`, or None when it would do nothing."""
    _check_values(aug)
    active = _active_options(aug)
    if _get(aug, "name") == "none" or not active:
        return None
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise ConfigError(f"augmentation=image needs image inputs of shape (height, width, channels). Use "
                          f"augmentation=none for this dataset. Received: input_shape={shape}")

    import keras

    seed = _get(aug, "seed")
    seeds = itertools.count(seed) if seed is not None else None

    def next_seed():
        # One seed per layer: layers built with the same seed draw the same random stream, which would tie
        # e.g. the rotation angle to the shift.
        return next(seeds) if seeds is not None else None

    # extf data always arrive channels_last (model=cnn transposes after this layer for channels_first), so fix
    # the layout instead of following keras.config.image_data_format().
    fill = {"fill_mode": _get(aug, "fill_mode"), "fill_value": float(_get(aug, "cval")),
            "data_format": "channels_last"}
    # Layer order follows ImageDataGenerator's transform (rotation, shift, shear, zoom, then flips, then
    # rescale), except that each Keras layer resamples on its own instead of one combined affine warp.
    layers = [keras.Input(shape=shape, name="augmentation_input"), *_warp_layers(aug, fill, next_seed),
              *_flip_and_rescale_layers(aug, next_seed)]
    return keras.Sequential(layers, name="augmentation")


def _warp_layers(aug: Mapping, fill: dict, next_seed) -> list:
    """Rotation, translation, shear and zoom layers, as ImageDataGenerator's options set them."""
    import keras

    layers = []
    rotation = float(_get(aug, "rotation_range"))
    if rotation > 0:
        # ImageDataGenerator turns by U(-r, r) degrees; RandomRotation's factor is a fraction of a full turn
        # and a single float f means U(-f, f) * 360 degrees, so f = r / 360.
        layers.append(keras.layers.RandomRotation(rotation / 360.0, seed=next_seed(), name="rotation",
                                                  **fill))
    width_shift, height_shift = float(_get(aug, "width_shift_range")), float(_get(aug, "height_shift_range"))
    if width_shift > 0 or height_shift > 0:
        # Both take fractions of the image size, sampled in [-f, f]: the same meaning, no conversion.
        layers.append(keras.layers.RandomTranslation(height_shift, width_shift, seed=next_seed(),
                                                     name="translation", **fill))
    shear = float(_get(aug, "shear_range"))
    if shear > 0:
        # ImageDataGenerator draws an angle a ~ U(-s, s) radians and maps output (row, col) to input
        # (row - sin(a) col, cos(a) col): rows slide vertically in proportion to the column, a shear along y.
        # RandomShear's y_factor f is a slope instead (pixels of vertical shift per pixel of x), and a line
        # sheared by angle a has slope tan(a), so f = tan(s). Not reproduced: the generator's extra cos(a)
        # column scaling (2% at s = 0.2), and its centre pivot: Keras shears about the top-left corner,
        # which adds a vertical shift of up to f * (width - 1) / 2 pixels.
        # The factor is given as (0, f): RandomShear multiplies its draw by a random sign, so this is
        # U(-f, f) like a plain f, but a plain f is stored in get_config as (-f, f), which RandomShear's own
        # range check then rejects when a saved model is loaded.
        layers.append(keras.layers.RandomShear(x_factor=(0.0, 0.0), y_factor=(0.0, math.tan(shear)),
                                               seed=next_seed(), name="shear", **fill))
    zoom = float(_get(aug, "zoom_range"))
    if zoom > 0:
        # ImageDataGenerator samples zx, zy ~ U(1-x, 1+x) independently and reads input = z * output, so
        # z > 1 zooms out. RandomZoom reads input = (1 + f) * output around the centre with f ~ U(lower,
        # upper), a positive f zooming out too; so factors (-x, x) give exactly z in [1-x, 1+x].
        # width_factor is set explicitly: None would reuse the height zoom (aspect ratio kept), unlike the
        # generator.
        layers.append(keras.layers.RandomZoom(height_factor=(-zoom, zoom), width_factor=(-zoom, zoom),
                                              seed=next_seed(), name="zoom", **fill))
    return layers


def _flip_and_rescale_layers(aug: Mapping, next_seed) -> list:
    """Flips (a coin per axis) and the rescaling, last as in ImageDataGenerator."""
    import keras

    layers = []
    # RandomFlip("horizontal_and_vertical") draws ONE coin for both axes (both flips or none); the generator
    # flips each axis on its own coin, so each flip gets its own layer.
    if _get(aug, "horizontal_flip"):
        layers.append(keras.layers.RandomFlip("horizontal", seed=next_seed(), data_format="channels_last",
                                              name="horizontal_flip"))
    if _get(aug, "vertical_flip"):
        layers.append(keras.layers.RandomFlip("vertical", seed=next_seed(), data_format="channels_last",
                                              name="vertical_flip"))
    rescale = _get(aug, "rescale")
    if rescale is not None and rescale != 1:
        # Not random, so it applies at inference too; last, as in ImageDataGenerator, so cval is in the
        # input's pixel units.
        layers.append(keras.layers.Rescaling(float(rescale), name="rescale"))
    return layers
