"""`extf init DIR [name=PACKAGE]`: write a small working project that uses extf from outside its checkout.

The project has its own config folder (a dataset and two models of its own, their search spaces, its default
choices), its own package with a model function and a data function on the digits scikit-learn ships, an
experiment, a README and a Makefile. `extf init demo && cd demo && extf tune` runs a study of the project's model.
Nothing here imports TensorFlow: the command answers at once.
"""

from __future__ import annotations

import keyword
import os
import shutil
import sys
import tempfile
from pathlib import Path

from extf.errors import ConfigError

HELP = ("write a new project of your own (its conf/, a package with a model and a data function, an experiment, "
        "README, Makefile): extf init DIR [name=PACKAGE]; then cd DIR && extf tune")
OPTIONS = ("name=",)  # what tab completion offers
USAGE = "extf init DIR [name=PACKAGE]   (PACKAGE: the project's Python package, default myproj)"
TAKEN = ("extf", "keras", "sklearn", "tensorflow", "hydra", "omegaconf", "mlflow", "numpy", "pandas", "conf")

FILES = {
    "extf.yaml": """\
# The extf project file (docs/own-project.md in extf). extf reads it from the folder it runs in.
config_dir: conf            # added to Hydra's search path before extf's own config
allow_targets: [myproj]     # packages whose functions a `_target_` may name (besides keras, extf, sklearn)
""",
    "conf/project/default.yaml": """\
# @package _global_
# This project's defaults on top of extf's: plain `extf tune` uses them; an experiment and the command line override
# them. Any option of extf (dataset=iris, model=cnn, tuner=bayesian, ...) stays available beside the project's.
defaults:
  - override /dataset: mydigits
  - override /model: mynet
experiment_name: myproj
trainer:
  epochs: 10
tuner:
  max_trials: 4
""",
    "conf/dataset/mydigits.yaml": """\
# The project's dataset: myproj.data.load_data(n_samples=...) returns the arrays and what they are.
_target_: myproj.data.load_data
name: mydigits
n_samples: null             # null: all 1797 images; fewer for a quick run
val_fraction: 0.16
test_fraction: 0.2
""",
    "conf/model/mynet.yaml": """\
# The project's model: myproj.models.build_model(cfg, meta) with cfg = this section (the trial's values applied).
_target_: myproj.models.build_model
name: mynet
kind: dense                 # dense | conv
units: 64
dropout: 0.1
loss: null                  # null: the task's (extf compiles the model, as it returns it uncompiled)
metrics: null
""",
    "conf/model/myconv.yaml": """\
# The same function, another option: a small convolutional network.
_target_: myproj.models.build_model
name: myconv
kind: conv
units: 32
dropout: 0.1
loss: null
metrics: null
""",
    "conf/search_space/mynet.yaml": """\
# What `extf tune` searches for model=mynet: config paths -> specs (see extf's README, Search spaces).
model.units: {type: choice, values: [32, 64, 128]}
model.dropout: {type: float, low: 0.0, high: 0.3, step: 0.1}
optimizer.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, sampling: log}
""",
    "conf/search_space/myconv.yaml": """\
model.units: {type: choice, values: [16, 32]}
optimizer.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, sampling: log}
""",
    "experiments/example.yaml": """\
# @package _global_
# A study recipe: extf tune experiment=example
defaults:
  - override /model: myconv
experiment_name: myproj_example
trainer:
  epochs: 5
tuner:
  max_trials: 3
""",
    "myproj/__init__.py": '''\
"""myproj: the project's own model and data code, run and tracked by extf."""
''',
    "myproj/data.py": '''\
"""The project's dataset. extf calls load_data with the keys of conf/dataset/mydigits.yaml."""

import numpy as np


def load_data(n_samples=None):
    """8x8 images of handwritten digits (scikit-learn ships them: no download), as extf's dataset contract wants:
    the arrays (extf splits them into train / validation / test) and what they are."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images[..., np.newaxis].astype("float32")  # (n, 8, 8, 1), pixel values 0..16
    y = digits.target.astype("int64")
    if n_samples:
        x, y = x[:n_samples], y[:n_samples]
    return {
        "x": x,
        "y": y,
        "task": "multiclass",
        "modality": "image",
        "class_names": [str(d) for d in range(10)],
        "extra": {"rescale": 1.0 / 16.0},  # the model scales its raw inputs itself, so it takes raw images
    }
''',
    "myproj/models.py": '''\
"""The project's model. extf calls build_model(cfg, meta) for every trial."""

import keras


def build_model(cfg, meta):
    """cfg: the model section of the config (conf/model/mynet.yaml, with the trial's hyperparameters applied);
    meta: the dataset's metadata (input_shape, n_classes, extra). Returned uncompiled: extf compiles it with the
    configured optimizer and the task's loss and metrics (compile it yourself to choose them)."""
    inputs = keras.Input(shape=tuple(meta.input_shape), name="inputs")
    x = keras.layers.Rescaling(meta.extra.get("rescale", 1.0))(inputs)
    if cfg.kind == "conv":
        x = keras.layers.Conv2D(cfg.units, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(cfg.units, activation="relu")(x)
    x = keras.layers.Dropout(cfg.dropout)(x)
    outputs = keras.layers.Dense(meta.n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=cfg.name)
''',
    "README.md": """\
# myproj

Your own Keras model and data code (`myproj/`), tuned and tracked by [extf](https://pypi.org/project/extf/):
Hydra composes `conf/` on top of extf's own config, keras-tuner searches, MLflow records every study in `mlruns/`.

```
extf tune                        # a study of myproj's model (conf/model/mynet.yaml) on its dataset
extf tune experiment=example     # the recipe in experiments/example.yaml
```

Then `extf runs` (the studies and their test metrics), `extf report` (an HTML report), `extf ui` (the MLflow UI),
`extf predict run_id=ID input=x.npy output=p.csv`. `extf tune --help` lists every option, the project's and
extf's. `make help` lists the Makefile's shortcuts.

- `extf.yaml`: the project file (`allow_targets`: the packages a config may run code from).
- `conf/`: the project's options (`dataset/`, `model/`, `search_space/`) and its defaults (`project/default.yaml`).
- `myproj/`: `build_model(cfg, meta)` returns a `keras.Model`; `load_data(...)` returns the arrays and their metadata.
""",
    "Makefile": """\
# myproj with extf. `make help` lists the targets.
EXTF ?= extf
ARGS ?=
.DEFAULT_GOAL := help
.PHONY: help tune example sweep runs report ui clean

help: ## List the targets
\t@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-8s %s\\n", $$1, $$2}'

tune: ## A study of the project's model on its dataset; extra overrides: ARGS="trainer.epochs=3"
\t$(EXTF) tune $(ARGS)

example: ## The recipe in experiments/example.yaml
\t$(EXTF) tune experiment=example $(ARGS)

sweep: ## One study per model of the project (a Hydra multirun)
\t$(EXTF) tune -m model=mynet,myconv $(ARGS)

runs: ## The studies and their test metrics
\t$(EXTF) runs

report: ## An HTML report of the latest study
\t$(EXTF) report

ui: ## The MLflow UI on 127.0.0.1:5000
\t$(EXTF) ui

clean: ## Remove the runs (outputs/, multirun/, mlruns/)
\trm -rf outputs multirun mlruns
""",
    ".gitignore": "mlruns/\noutputs/\nmultirun/\n__pycache__/\n",
}


def parse(args: list[str]) -> tuple[Path, str]:
    # extf.project imports Hydra: only `extf init` pays for it, not `extf --help` and the other commands
    from extf.project import PACKAGE_NAME

    folder, name = None, "myproj"
    for a in args:
        key, sep, value = a.partition("=")
        if sep and key in ("name", "--name"):
            name = value
        elif not sep and folder is None and not a.startswith("-"):
            folder = a
        else:
            raise ConfigError(f"unexpected argument {a!r}. Expected {USAGE}. Received: {' '.join(args)!r}")
    if folder is None:
        raise ConfigError(f"extf init needs the folder to create. Expected {USAGE}, e.g. `extf init demo`. "
                          f"Received: {' '.join(args)!r}")
    if not PACKAGE_NAME.match(name) or "." in name or keyword.iskeyword(name) or name in TAKEN \
            or name in sys.stdlib_module_names:
        raise ConfigError(f"name must be a new Python package name (letters, digits, _), not a keyword, a standard "
                          f"library module or one of {', '.join(TAKEN)}. Choose another, e.g. name=myproj. "
                          f"Received: name={name!r}")
    return Path(folder).expanduser(), name


def files(name: str) -> dict[str, str]:
    """The project's files, its package named `name`."""
    return {path.replace("myproj/", f"{name}/"): text.replace("myproj", name) for path, text in FILES.items()}


def run(args: list[str]) -> int:
    folder, name = parse(args)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{str(folder)!r} already exists and is not an empty folder; extf init writes a new "
                          f"project and overwrites nothing. Choose a new folder. Received: DIR={str(folder)!r}")
    parent = folder.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=parent))
    except OSError as e:
        raise ConfigError(f"cannot create {str(folder)!r} ({e.strerror}). Expected a writable place for the new "
                          f"project. Received: DIR={str(folder)!r}") from None
    try:  # written aside, then moved into place at once: never a half-written project
        for relative, text in files(name).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.chmod(0o777 & ~_umask())
        if folder.is_dir():
            folder.rmdir()  # the empty folder it replaces
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"extf init: wrote the project {folder}/ (package {name}/). Next:\n"
          f"  cd {folder}\n"
          f"  extf tune                       # a study of {name}'s model on its dataset\n"
          f"  extf tune experiment=example    # the recipe in experiments/example.yaml\n"
          f"  extf runs; extf report          # the results")
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
