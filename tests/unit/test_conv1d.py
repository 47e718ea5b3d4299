"""The conv1d family: Conv1D blocks over sequence windows, trains on sine (regression) and nabiya (classes)."""

from __future__ import annotations

import numpy as np
import pytest

from extf.data import load_dataset
from extf.errors import ConfigError
from extf.models import build_model, check_fits_data
from extf.tuning.trial import fit, make_callbacks

CASES = [  # dataset, overrides, layers that must be there
    ("sine", [], {"conv_0", "conv_1", "pool_1", "global_average", "dense"}),
    ("sine", ["model.pooling=flatten", "model.padding=valid", "model.pool_size=1", "model.dense_units=0",
              "model.dropout=0.2", "model.num_blocks=3"], {"conv_2", "flatten", "dropout_2"}),
    ("nabiya", [], {"conv_1", "global_average"}),
    ("nabiya", ["dataset.features=index", "model.kernel_size=2", "model.activation=tanh"], {"conv_0"}),
]


@pytest.mark.slow  # trains: not in make test-fast
@pytest.mark.parametrize("dataset, overrides, layers", CASES, ids=[f"{d}-{' '.join(o)}" for d, o, _ in CASES])
def test_conv1d_builds_and_trains_one_epoch(make_cfg, tmp_path, dataset, overrides, layers):
    import keras

    keras.backend.clear_session()
    cfg = make_cfg([f"dataset={dataset}", "model=conv1d", *overrides, "trainer.epochs=1", "trainer.batch_size=8"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    model = build_model(cfg, splits.meta)
    names = {layer.name for layer in model.layers}
    assert layers <= names
    assert not any(name.startswith(("lstm", "gru")) for name in names)
    history = fit(model, cfg, splits, make_callbacks(cfg.callbacks, tmp_path)).history
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    if splits.meta.task == "regression":
        assert model.output_shape == (None, 1) and "val_mae" in history
    else:
        assert model.output_shape == (None, 14) and "val_accuracy" in history
        assert model.layers[-1].get_config()["activation"] == "softmax"


def test_valid_padding_shortens_the_sequence_as_computed(make_cfg):
    cfg = make_cfg(["dataset=sine", "model=conv1d", "model.padding=valid", "model.kernel_size=5",
                    "model.pooling=flatten", "model.dense_units=0"])
    model = build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)
    # 20 steps -> conv 16 -> pool 8 -> conv 4 -> pool 2, with 64 filters in the second block
    assert model.get_layer("pool_1").output.shape[1:] == (2, 64)
    assert model.get_layer("flatten").output.shape[-1] == 128


@pytest.mark.parametrize("dataset, needle", [
    ("digits", "input_shape=(8, 8, 1)"),
    ("iris", "input_shape=(4,)"),
    ("shapes", "input_shape=(32, 32, 1)"),
])
def test_conv1d_on_non_sequence_data_is_refused(make_cfg, dataset, needle):
    cfg = make_cfg([f"dataset={dataset}", "model=conv1d"])
    meta = load_dataset(cfg.dataset, cfg.seed).meta
    with pytest.raises(ConfigError, match="model=conv1d needs sequence data|segmentation dataset") as info:
        check_fits_data(cfg.model, meta)
    if dataset != "shapes":
        assert needle in str(info.value) and "dataset=sine" in str(info.value)


def test_conv1d_that_shrinks_below_one_step_is_refused(make_cfg):
    cfg = make_cfg(["dataset=nabiya", "model=conv1d", "model.num_blocks=3"])  # 4 steps -> 2 -> 1 -> 0
    with pytest.raises(ConfigError, match=r"below one step in block 3.*timesteps=4"):
        build_model(cfg, load_dataset(cfg.dataset, cfg.seed).meta)


def test_bad_pooling_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="`model.pooling` must be one of: flatten, global_average"):
        make_cfg(["dataset=sine", "model=conv1d", "model.pooling=max"])
