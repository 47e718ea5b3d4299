"""Every config file composes and validates; bad values get one clear ConfigError naming the key."""

from __future__ import annotations

import pytest

from extf.errors import ConfigError
from tests.conftest import CONF, ROOT

FILE_INPUTS = {"csv": ["dataset.path=x.csv", "dataset.target=y"], "npz": ["dataset.path=x.npz"],
               "image_dir": ["dataset.path=photos"],
               "grid": ["search_space=none"]}  # the default cnn space has a continuous float, which grid refuses


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["dataset", "model", "optimizer", "callbacks", "augmentation", "trainer",
                                   "tracking", "tuner", "search_space"])
def test_every_option_composes_and_validates(make_cfg, group):
    assert options(group), f"conf/{group} is empty"
    for option in options(group):
        extra = FILE_INPUTS.get(option, []) if group in ("dataset", "tuner") else []
        for command in ("train", "tune"):
            cfg = make_cfg([f"{group}={option}", *extra], command=command)
            if group in ("dataset", "model", "optimizer"):
                assert cfg[group].name == option


def test_train_is_a_study_of_one_fixed_trial(make_cfg):
    cfg = make_cfg(command="train")
    assert cfg.tuner.max_trials == 1 and dict(cfg.search_space) == {}
    tuned = make_cfg(command="tune")
    assert "optimizer.learning_rate" in tuned.search_space  # the model's search space comes along


def test_paths_are_absolute(make_cfg, tmp_path):
    cfg = make_cfg()
    assert cfg.tracking.tracking_uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"


@pytest.mark.parametrize("override, needles", [
    ("trainer.epochs=abc", ["trainer.epochs", "int", "'abc'"]),
    ("model=mlp model.units=0", ["model.units", "positive", "model.units=0"]),
    ("model=mlp model.units=-3", ["model.units", "model.units=-3"]),
    ("model=mlp +model.unitz=3", ["model.unitz", "Expected one of", "units"]),
    ("model=mlp model.activation=relux", ["model.activation", "relu", "'relux'"]),
    ("model=cnn model.padding=full", ["model.padding", "same", "valid"]),
    ("model.dropout=1.5", ["model.dropout", "[0, 1)", "1.5"]),
    ("dataset.test_fraction=0.5 dataset.val_fraction=0.45", ["val_fraction", "test_fraction"]),
    ("optimizer.learning_rate=-1", ["optimizer.learning_rate", "> 0"]),
    ("optimizer=sgd optimizer.weight_decay=-0.1", ["optimizer.weight_decay", ">= 0", "-0.1"]),
    ("optimizer._target_=os.system", ["allowlist", "os.system"]),
    ("+callbacks.evil._target_=subprocess.call", ["allowlist", "subprocess.call"]),
    ("callbacks.early_stopping=5", ["callbacks.early_stopping", "_target_"]),
    ("tuner.max_trials=0", ["tuner.max_trials", "positive"]),
    ("+foo=1", ["Unknown top-level config key", "foo"]),
])
def test_bad_values_name_the_key(make_cfg, override, needles):
    with pytest.raises(ConfigError) as info:
        make_cfg(override.split(), command="tune")
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "Received" in msg


def test_missing_required_value_is_named(make_cfg):
    with pytest.raises(ConfigError, match=r"dataset.path, dataset.target.*Received: dataset.path=\?\?\?, dataset.target=\?\?\?"):
        make_cfg(["dataset=csv"])


def test_validation_does_not_import_tensorflow(make_cfg):
    import subprocess
    import sys

    code = ("import sys; from tests.conftest import compose; from extf.commands.composed import prepare; "
            "prepare('train', compose(['paths.root_dir=/tmp'])); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert out.stdout.strip() == "False", out.stdout + out.stderr
