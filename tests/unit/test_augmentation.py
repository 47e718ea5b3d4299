"""Image augmentation: ImageDataGenerator options map to the right Keras layers and factors, random layers act
only in training, rescale always, and bad values or non-image data get a ConfigError naming the key."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from omegaconf import OmegaConf

from extf.config.schema import AugmentationConf
from extf.errors import ConfigError
from extf.models.augmentation import KEYS, NEUTRAL, build_augmentation, check_augmentation
from tests.conftest import CONF

SHAPE = (8, 8, 1)


def images(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE)).astype("float32")


def conf(**options) -> dict:
    """A full augmentation mapping: neutral image augmentation with `options` set."""
    return {"name": "image", **NEUTRAL, "fill_mode": "nearest", "cval": 0.0, "seed": 0, **options}


def layer_configs(aug) -> dict[str, tuple[str, dict]]:
    return {layer.name: (type(layer).__name__, layer.get_config()) for layer in aug.layers}


# --------------------------------------------------------------------------- config files
def test_yaml_files_have_every_key_and_match_the_schema():
    fields = {f.name for f in dataclasses.fields(AugmentationConf)}
    assert fields == set(KEYS)
    for option in ("none", "image"):
        assert set(OmegaConf.load(CONF / "augmentation" / f"{option}.yaml")) == fields, option


def test_yaml_files_build():
    none = OmegaConf.load(CONF / "augmentation" / "none.yaml")
    assert build_augmentation(none, SHAPE) is None
    check_augmentation(none, "tabular", (4,))  # neutral none suits any data
    image = OmegaConf.load(CONF / "augmentation" / "image.yaml")
    check_augmentation(image, "image", SHAPE)
    aug = build_augmentation(image, SHAPE)
    assert aug.name == "augmentation"
    kinds = [type(layer).__name__ for layer in aug.layers]
    assert kinds == ["RandomRotation", "RandomTranslation", "RandomZoom"]
    assert not any("flip" in layer.name for layer in aug.layers)  # digits must not be mirrored


def test_image_option_composes_through_the_project_config(make_cfg):
    cfg = make_cfg(["dataset=digits", "model=cnn", "augmentation=image", "augmentation.shear_range=0.2"])
    assert cfg.augmentation.shear_range == 0.2 and cfg.augmentation.rescale is None
    check_augmentation(cfg.augmentation, "image", SHAPE)
    assert "shear" in [layer.name for layer in build_augmentation(cfg.augmentation, SHAPE).layers]


def test_module_imports_no_tensorflow():
    code = ("import sys, extf.models.augmentation; "
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TF imported at module level'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- neutral options
@pytest.mark.parametrize("aug", [{"name": "none"}, conf(), conf(rescale=1.0),
                                 conf(fill_mode="constant", cval=3.0)],
                         ids=["none", "image-all-neutral", "rescale-1", "fill-only"])
def test_nothing_to_do_builds_nothing(aug):
    assert build_augmentation(aug, SHAPE) is None


# --------------------------------------------------------------------------- training only
FULL = conf(rotation_range=20.0, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
            zoom_range=0.2, horizontal_flip=True, vertical_flip=True)


def test_random_layers_act_only_in_training():
    x = images()
    aug = build_augmentation(FULL, SHAPE)
    assert not np.allclose(np.asarray(aug(x, training=True)), x, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_in_a_model_fit_augments_and_predict_does_not():
    import keras

    x = images()
    aug = build_augmentation({**FULL, "rescale": 0.5}, SHAPE)
    inputs = keras.Input(shape=SHAPE)
    model = keras.Model(inputs, aug(inputs))
    np.testing.assert_allclose(model.predict(x, verbose=0), x * 0.5, rtol=1e-6)  # only rescaled
    assert not np.allclose(np.asarray(model(x, training=True)), x * 0.5, atol=1e-3)


def test_rescale_applies_in_training_and_inference():
    x = images()
    aug = build_augmentation(conf(rescale=0.25), SHAPE)
    assert [type(layer).__name__ for layer in aug.layers] == ["Rescaling"]
    for training in (True, False):
        np.testing.assert_allclose(np.asarray(aug(x, training=training)), x * 0.25, rtol=1e-6)


def test_rescale_comes_last_so_cval_is_in_input_units():
    aug = build_augmentation(conf(rotation_range=10.0, rescale=0.5, fill_mode="constant", cval=2.0), SHAPE)
    assert [layer.name for layer in aug.layers] == ["rotation", "rescale"]
    assert aug.layers[0].get_config()["fill_value"] == 2.0


def test_same_seed_same_augmentation_and_distinct_layer_seeds():
    x = images()
    first, second = build_augmentation(FULL, SHAPE), build_augmentation(FULL, SHAPE)
    np.testing.assert_allclose(np.asarray(first(x, training=True)), np.asarray(second(x, training=True)))
    seeds = [layer.get_config()["seed"] for layer in first.layers]
    assert seeds == list(range(len(seeds)))  # seed 0, 1, 2, ...: no two layers share a random stream


def test_saved_model_keeps_the_augmentation(tmp_path):
    import keras

    aug = build_augmentation({**FULL, "rescale": 0.5}, SHAPE)
    inputs = keras.Input(shape=SHAPE)
    model = keras.Model(inputs, keras.layers.Flatten()(aug(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("augmentation")).__name__ == "Sequential"
    x = images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# --------------------------------------------------------------------------- option -> layer, factor
def test_rotation_degrees_become_a_fraction_of_a_turn():
    (kind, cfg), = layer_configs(build_augmentation(conf(rotation_range=90.0), SHAPE)).values()
    assert kind == "RandomRotation"
    assert cfg["factor"] == pytest.approx((-0.25, 0.25))  # 90 / 360, both directions like ImageDataGenerator


def test_shifts_map_to_translation_fractions():
    (kind, cfg), = layer_configs(build_augmentation(conf(width_shift_range=0.2, height_shift_range=0.1),
                                                    SHAPE)).values()
    assert kind == "RandomTranslation"
    assert (cfg["width_factor"], cfg["height_factor"]) == (0.2, 0.1)
    layer = build_augmentation(conf(height_shift_range=0.3), SHAPE).layers[0]
    assert (layer.width_lower, layer.width_upper, layer.height_lower, layer.height_upper) == (0, 0, -0.3, 0.3)


def test_shear_radians_become_a_tangent_along_y():
    (kind, cfg), = layer_configs(build_augmentation(conf(shear_range=0.5), SHAPE)).values()
    assert kind == "RandomShear"
    # (0, tan s) plus RandomShear's random sign = a slope in [-tan s, tan s]; (0, f) also survives save/load.
    assert cfg["y_factor"] == pytest.approx((0.0, math.tan(0.5)))
    assert cfg["x_factor"] == pytest.approx((0.0, 0.0))


def test_shear_slants_horizontal_lines_and_keeps_vertical_ones_like_imagedatagenerator():
    aug = build_augmentation(conf(shear_range=0.6), SHAPE)
    horizontal = np.zeros((16, *SHAPE), "float32")
    horizontal[:, 4, :, 0] = 1.0
    vertical = np.zeros((16, *SHAPE), "float32")
    vertical[:, 2:6, 4, 0] = 1.0
    out_h = np.asarray(aug(horizontal, training=True))[..., 0]
    last_column_rows = np.argmax(out_h[:, :, 7], axis=1)  # Keras shears about column 0, where row 4 stays
    assert (last_column_rows < 4).any() and (last_column_rows > 4).any()  # slants both ways, as U(-s, s)
    out_v = np.asarray(aug(vertical, training=True))[..., 0]
    assert np.all(out_v[:, :, [0, 1, 6, 7]] < 0.5)  # the vertical line stays in its column (4, +-bilinear)


def test_zoom_range_maps_to_symmetric_independent_factors():
    (kind, cfg), = layer_configs(build_augmentation(conf(zoom_range=0.3), SHAPE)).values()
    assert kind == "RandomZoom"
    # (1 + f) with f in [-0.3, 0.3] = zoom 0.7..1.3 on each axis, sampled independently like the generator.
    assert cfg["height_factor"] == pytest.approx((-0.3, 0.3))
    assert cfg["width_factor"] == pytest.approx((-0.3, 0.3))


@pytest.mark.parametrize("flips, modes", [({"horizontal_flip": True}, ["horizontal"]),
                                          ({"vertical_flip": True}, ["vertical"]),
                                          ({"horizontal_flip": True, "vertical_flip": True},
                                           ["horizontal", "vertical"])])
def test_flips_map_to_one_random_flip_per_axis(flips, modes):
    aug = build_augmentation(conf(**flips), SHAPE)
    assert [(type(layer).__name__, layer.get_config()["mode"]) for layer in aug.layers] == \
        [("RandomFlip", mode) for mode in modes]


def test_horizontal_flip_mirrors_some_images_left_right():
    x = images(32)
    out = np.asarray(build_augmentation(conf(horizontal_flip=True), SHAPE)(x, training=True))
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)


def test_fill_mode_and_cval_reach_every_geometric_layer():
    aug = build_augmentation({**FULL, "fill_mode": "constant", "cval": 0.5}, SHAPE)
    geometric = [layer for layer in aug.layers if type(layer).__name__ != "RandomFlip"]
    assert len(geometric) == 4
    for layer in geometric:
        cfg = layer.get_config()
        assert (cfg["fill_mode"], cfg["fill_value"], cfg["data_format"]) == ("constant", 0.5, "channels_last")


def test_constant_fill_uses_cval():
    x = np.ones((4, *SHAPE), "float32")
    aug = build_augmentation(conf(width_shift_range=0.5, fill_mode="constant", cval=-1.0), SHAPE)
    assert np.asarray(aug(x, training=True)).min() < 0  # pixels shifted in from outside are cval


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("modality, shape", [("tabular", (4,)), ("sequence", (20, 1)), ("image", (64,))])
def test_image_augmentation_on_non_image_data_is_refused(modality, shape):
    with pytest.raises(ConfigError, match=r"augmentation=none.*Received: augmentation.name='image'"):
        check_augmentation(conf(rotation_range=10.0), modality, shape)


def test_build_refuses_non_image_shapes():
    with pytest.raises(ConfigError, match="Received: input_shape"):
        build_augmentation(conf(rotation_range=10.0), (4,))


BAD = [
    ("name", "video"), ("rotation_range", -1.0), ("rotation_range", 200.0), ("rotation_range", True),
    ("width_shift_range", 1.0), ("height_shift_range", -0.1), ("shear_range", -0.1), ("shear_range", 1.0),
    ("zoom_range", -0.1), ("zoom_range", 1.0), ("horizontal_flip", "yes"), ("rescale", 0.0),
    ("fill_mode", "mirror"), ("cval", float("nan")), ("seed", -1), ("seed", 1.5), ("brightness_range", 0.2),
]


@pytest.mark.parametrize("key, value", BAD, ids=[f"{k}={v}" for k, v in BAD])
def test_bad_values_are_refused_naming_the_key(key, value):
    aug = conf(**{key: value})
    with pytest.raises(ConfigError, match=rf"Received: augmentation\.{key}="):
        check_augmentation(aug, "image", SHAPE)
    with pytest.raises(ConfigError, match="Received"):  # direct builder callers get this, not Keras' error
        build_augmentation(aug, SHAPE)


def test_options_with_augmentation_none_are_refused():
    with pytest.raises(ConfigError, match=r"augmentation=image.*Received: augmentation\.rotation_range=10"):
        check_augmentation({**conf(rotation_range=10.0), "name": "none"}, "image", SHAPE)
