"""docs/extending.md followed once: a project adds a model family and a dataset, each one module plus one YAML file,
and nothing else (no list to extend, no extf file to edit): `extf train` validates them with their own constraints,
lists them in --help, and trains the family on the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import forked_cli
from tests.conftest import assert_clean_error, extf_in_process

# the project, as `extf init` or a user sets it up once: its package is opted in
PROJECT = {"extf.yaml": "allow_targets: [toyproj]\n"}

# ---- the model family: its module and its YAML
TOY_MODULE = '''\
"""A toy family: one hidden Dense layer of `units`."""

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import ACTIVATIONS, POSITIVE_INT
from extf.config.schema import ModelConf
from extf.errors import ConfigError


@dataclass
class Conf(ModelConf):
    units: int
    activation: str
    constraints: ClassVar = {"units": POSITIVE_INT, "activation": ACTIVATIONS}


def check(cfg, meta):
    if len(meta.input_shape) != 1:
        raise ConfigError(f"model=toy needs tabular data. Use dataset=iris. Received: input_shape={meta.input_shape}")


def build(cfg, inputs):
    import keras

    return keras.layers.Dense(cfg.units, activation=cfg.activation, name="toy")(inputs)
'''
TOY_YAML = """\
_module_: toyproj.toy
name: toy
units: 8
activation: relu
loss: null
metrics: null
"""

# ---- the dataset: its module and its YAML
BLOBS_MODULE = '''\
"""Three Gaussian blobs in `n_features` dimensions (multiclass)."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from extf.config.constraints import POSITIVE_INT
from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta


@dataclass
class Conf(DatasetConf):
    n_samples: int
    n_features: int
    constraints: ClassVar = {"n_samples": POSITIVE_INT, "n_features": POSITIVE_INT}


def load(cfg, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, cfg["n_samples"])
    x = (rng.normal(size=(cfg["n_samples"], cfg["n_features"])) + 3.0 * y[:, None]).astype("float32")
    meta = Meta(cfg["name"], "multiclass", "tabular", (cfg["n_features"],), ("a", "b", "c"))
    return split_arrays(x, y.astype("int64"), meta, cfg, seed)
'''
BLOBS_YAML = """\
_module_: toyproj.blobs
name: blobs
n_samples: 150
n_features: 4
val_fraction: 0.2
test_fraction: 0.2
"""

FILES = {"toyproj/toy.py": TOY_MODULE, "conf/model/toy.yaml": TOY_YAML,
         "toyproj/blobs.py": BLOBS_MODULE, "conf/dataset/blobs.yaml": BLOBS_YAML}


@pytest.fixture
def project(tmp_path) -> Path:
    for name, text in {**PROJECT, **FILES}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_new_options_are_listed_and_their_constraints_checked(project):
    listed = forked_cli.run(["train", "--help"], project)
    assert listed.returncode == 0, listed.stderr
    assert "toy" in listed.stdout and "blobs" in listed.stdout
    assert_clean_error(forked_cli.run(["train", "dataset=blobs", "model=toy", "model.units=0"], project),
                       "`model.units` must be a positive integer", "Received: model.units=0")
    assert_clean_error(forked_cli.run(["train", "dataset=blobs", "model=toy", "+model.unitz=3"], project),
                       "Unknown config key `model.unitz`", "units, activation", "Received: model.unitz=3")
    assert_clean_error(forked_cli.run(["train", "dataset=blobs", "model=toy", "dataset.n_features=-1"], project),
                       "`dataset.n_features` must be a positive integer", "Received: dataset.n_features=-1")
    assert_clean_error(forked_cli.run(["train", "dataset=digits", "model=toy"], project),
                       "model=toy needs tabular data", "Received: input_shape=")


def test_a_module_outside_allow_targets_is_refused(project):
    (project / "extf.yaml").write_text("allow_targets: []\n")
    assert_clean_error(forked_cli.run(["train", "dataset=iris", "model=toy"], project),
                       "`model._module_` names a callable outside the allowlist", "Received: model._module_='toyproj.toy'")


@pytest.mark.slow
def test_extf_trains_the_project_s_family_on_the_project_s_dataset(project):
    proc = extf_in_process(["train", "dataset=blobs", "model=toy", "trainer.epochs=1", "tracking=none"], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test (evaluated once):" in proc.stdout
    model_files = list((project / "outputs").rglob("*.keras"))
    assert model_files, proc.stdout
    import keras

    model = keras.saving.load_model(model_files[0], safe_mode=True)
    assert model.get_layer("toy").units == 8 and model.output_shape == (None, 3)
