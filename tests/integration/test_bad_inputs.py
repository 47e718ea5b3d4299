"""The bad-input corpus: every way a user can get a config, an override, a data file or a command line wrong.

Each row runs `extf` as a user would (a process of its own, EXTF_ROOT = a fresh folder) and must end with exit code
2 (a user's mistake), no traceback, one message naming the problem (the needles), nothing half-written and no MLflow
run left RUNNING. Rows that need a logged study (RUN_CASES, `slow`) share one tiny iris study. The processes of the
selected rows are started ahead of their tests, two at a time, each forked from one driver that has imported extf's
command line (`corpus`, tests/forked_cli.py): most of an `extf` subprocess for a config error is interpreter
start-up and imports.
"""

from __future__ import annotations

import shutil
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from extf.errors import ConfigError
from tests import forked_cli
from tests.conftest import assert_clean_error, run_extf, running_runs
from tests.unit.test_image_folders import damaged_inside

IRIS_MLP = ["dataset=iris", "model=mlp"]
TUNE_IRIS = ["tune", *IRIS_MLP, "trainer.epochs=1", "tuner.max_trials=1", "evaluation.plots=false"]


# --------------------------------------------------------------------------- file makers
def png(path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype="uint8"), mode="L").save(path)


def cut_png(path: Path) -> None:
    png(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 12])  # an interrupted copy: no IEND chunk


def npz(**arrays):
    def write(path: Path) -> None:
        np.savez(path, **arrays)

    return write


def truncated_npz(path: Path) -> None:
    np.savez(path, x=np.ones((40, 2)), y=np.arange(40) % 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncated_npy(path: Path) -> None:
    np.save(path, np.ones((5, 4), dtype="float32"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])


def nan_npz(path: Path) -> None:
    x = np.ones((40, 2))
    x[3, 0] = np.nan
    np.savez(path, x=x, y=np.arange(40) % 2)


def csv_rows(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD_CSV = csv_rows("a,b,y", [f"{i},{i % 7},{i % 2}" for i in range(40)])
FOLDER = None  # a files value: create an empty folder

# an experiment YAML that does not parse, and one written without `# @package _global_`
BROKEN_EXPERIMENT = "# @package _global_\ntrainer:\n  epochs: [1, 2\n"
UNPACKAGED_EXPERIMENT = "trainer:\n  epochs: 3\n"
SEARCH_PATH = "hydra.searchpath=[file://{tmp}/myconf]"

# a project of one's own (extf.yaml, conf/, its package myproj/): docs/own-project.md
ALLOW_MYPROJ = {"extf.yaml": "allow_targets: [myproj]\n", "myproj/__init__.py": ""}
MYPROJ_MODELS = """\
import keras


def build(cfg, meta):
    inputs = keras.Input(shape=tuple(meta.input_shape))
    return keras.Model(inputs, keras.layers.Dense(meta.n_classes, activation="softmax")(inputs))


def not_a_model(cfg, meta):
    return "a model"


def broken(cfg, meta):
    return helper(cfg.units)


def helper(units):
    raise ValueError(f"boom: units={units}")
"""
MYPROJ_DATA = """\
import numpy as np


def tuple_only():
    return np.zeros((40, 3)), np.arange(40) % 2


def mismatched():
    return {"x": np.zeros((40, 3)), "y": np.arange(30) % 2, "task": "binary"}
"""


def project(model: str | None = None, dataset: str | None = None, allow: bool = True) -> dict:
    """The files of a project whose model=mine / dataset=mine are functions of its package myproj."""
    files = {**(ALLOW_MYPROJ if allow else {"myproj/__init__.py": ""}),
             "myproj/models.py": MYPROJ_MODELS, "myproj/data.py": MYPROJ_DATA}
    if model:
        files["conf/model/mine.yaml"] = f"_target_: myproj.models.{model}\nname: mine\nunits: 4\n"
        files["conf/search_space/mine.yaml"] = "model.units: {type: choice, values: [4, 8]}\n"
    if dataset:
        files["conf/dataset/mine.yaml"] = f"_target_: myproj.data.{dataset}\nname: mine\n"
    return files



def make_files(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        if content is FOLDER:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


# --------------------------------------------------------------------------- the corpus (no logged study needed)
# (id, argv, files to create first, needles that must all be in the output)
CASES = [
    # ---- the command line
    ("unknown-command", ["trian"], {}, ["unknown command 'trian'", "Expected one of: train, tune",
                                        "Received: 'trian'"]),
    ("runs-unknown-option", ["runs", "colour=red"], {}, ["unknown option 'colour=red'", "Received: 'colour=red'"]),
    ("runs-no-store", ["runs"], {}, ["no MLflow store", "Received: root="]),
    ("ui-public-host", ["ui", "host=0.0.0.0"], {}, ["served on 127.0.0.1 only", "ssh -L",
                                                     "Received: 'host=0.0.0.0'"]),
    ("ui-host-flag", ["ui", "--host", "0.0.0.0"], {}, ["served on 127.0.0.1 only", "Received: '--host'"]),
    ("ui-port-not-a-number", ["ui", "port=http"], {}, ["port must be a number", "Received: port='http'"]),
    ("ui-no-store", ["ui"], {}, ["no MLflow store", "Received: root="]),
    ("unknown-hydra-flag", ["train", "--frobnicate"], {}, ["unrecognized arguments: --frobnicate"]),
    # ---- Hydra: groups, syntax, experiments, sweeps
    ("unknown-group-option", ["train", "dataset=nope"], {}, ["no dataset named 'nope'", "iris, nabiya",
                                                              "Received: dataset=nope"]),
    ("misspelt-model", ["train", "model=cnnn"], {}, ["no model named 'cnnn'", "mlp, rnn", "Received: model=cnnn"]),
    ("empty-group-value", ["train", "dataset="], {}, ["no dataset named ''", "Received: dataset="]),
    ("unknown-tuner", ["tune", "tuner=annealing"], {}, ["no tuner named 'annealing'", "hyperband",
                                                        "Received: tuner=annealing"]),
    ("override-syntax-error", ["train", "model=["], {}, ["cannot parse the override 'model=['",
                                                         "Received: model=["]),
    ("unknown-experiment", ["tune", "experiment=nope"], {}, ["no experiment named 'nope'", "digits_cnn_hyperband",
                                                             "Received: experiment=nope"]),
    ("unparsable-experiment-yaml", ["tune", SEARCH_PATH, "experiment=broken"],
     {"myconf/experiment/broken.yaml": BROKEN_EXPERIMENT}, ["not valid YAML", "line 3", "Received: {tmp}/myconf/"
                                                           "experiment/broken.yaml"]),
    ("experiment-without-package-global", ["tune", SEARCH_PATH, "experiment=mine"],
     {"myconf/experiment/mine.yaml": UNPACKAGED_EXPERIMENT},
     ["Unknown top-level config key `experiment`", "# @package _global_", "Received: experiment="]),
    ("override-of-missing-key", ["train", "trainer.epoch=3"], {},
     ["unknown config key 'trainer.epoch'", "Did you mean trainer.epochs?", "Expected one of the keys of trainer:",
      "Received: trainer.epoch=3"]),
    ("misspelt-group-key", ["tune", "model=cnn", "modle.filters=3"], {},
     ["unknown config key 'modle.filters'", "Did you mean model.filters?", "Received: modle.filters=3"]),
    ("misspelt-key-of-the-chosen-model", ["train", "model=cnn", "model.filterz=3"], {},
     ["Did you mean model.filters?", "num_blocks", "Received: model.filterz=3"]),
    ("append-of-existing-key", ["train", "+trainer.epochs=3"], {}, ["An item is already at 'trainer.epochs'"]),
    ("interpolation-to-missing-env-var", ["train", "trainer.epochs=${oc.env:EXTF_NO_SUCH_VAR}"], {},
     ["Could not resolve an interpolation", "EXTF_NO_SUCH_VAR", "Received: key=trainer.epochs"]),
    # the first job of the sweep is the bad one: `extf` stops there (later jobs never start)
    ("sweep-with-a-bad-value", ["tune", "-m", *IRIS_MLP, "trainer.epochs=abc,1"], {},
     ["Wrong type for `trainer.epochs`", "Received: trainer.epochs='abc'"]),
    ("unwritable-root-override", ["train", "paths.root_dir=/proc/nope"], {},
     ["cannot write to '/proc/nope'", "Received: paths.root_dir='/proc/nope'"]),
    ("unwritable-root-from-the-environment", ["train"], {},
     ["cannot write to '/proc/nope'", "Received: EXTF_ROOT='/proc/nope'"], {"env": {"EXTF_ROOT": "/proc/nope"}}),
    ("empty-root-override", ["train", "paths.root_dir="], {}, ["paths.root_dir is empty",
                                                               "Received: paths.root_dir=''"]),
    ("unwritable-hydra-run-dir", ["train", "hydra.run.dir=/proc/nope/run"], {},
     ["cannot create '/proc/nope'", "Received: /proc/nope"]),
    # ---- config keys, types and ranges (validated before TensorFlow is imported)
    ("unknown-key", ["train", "+trainer.epochz=3"], {}, ["Unknown config key `trainer.epochz`", "epochs",
                                                          "Received: trainer.epochz=3"]),
    ("unknown-top-level-key", ["train", "+seeed=1"], {}, ["Unknown top-level config key `seeed`", "Received: seeed=1"]),
    ("unknown-model-key", ["train", "model=mlp", "+model.unitz=3"], {}, ["`model.unitz`", "Received: model.unitz=3"]),
    ("epochs-not-a-number", ["train", "trainer.epochs=abc"], {}, ["Wrong type for `trainer.epochs`", "int",
                                                                   "Received: trainer.epochs='abc'"]),
    ("epochs-a-float", ["train", "trainer.epochs=1.5"], {}, ["trainer.epochs", "Received: trainer.epochs=1.5"]),
    ("epochs-negative", ["train", "trainer.epochs=-1"], {}, ["`trainer.epochs` must be a positive integer",
                                                              "Received: trainer.epochs=-1"]),
    ("batch-size-zero", ["train", "trainer.batch_size=0"], {}, ["`trainer.batch_size` must be a positive integer",
                                                                 "Received: trainer.batch_size=0"]),
    ("bool-not-a-bool", ["train", "determinism=maybe"], {}, ["determinism", "Received: determinism='maybe'"]),
    ("model-units-zero", ["train", "model=mlp", "model.units=0"], {},
     ["`model.units` must be a positive integer", "Received: model.units=0"]),
    ("learning-rate-negative", ["train", "optimizer.learning_rate=-1"], {},
     ["`optimizer.learning_rate` must be > 0", "Received: optimizer.learning_rate=-1"]),
    ("threshold-above-one", ["train", "evaluation.threshold=2"], {},
     ["`evaluation.threshold` must be in [0, 1]", "Received: evaluation.threshold=2"]),
    ("val-fraction-above-one", ["train", "dataset.val_fraction=1.2"], {},
     ["`dataset.val_fraction` must be a fraction in [0, 1)", "Received: dataset.val_fraction=1.2"]),
    ("test-fraction-zero", ["train", "dataset.test_fraction=0"], {},
     ["dataset.test_fraction must be > 0", "Received:", "dataset.test_fraction=0"]),
    ("fractions-leave-no-training-data", ["train", "dataset.val_fraction=0.5", "dataset.test_fraction=0.45"], {},
     ["at least 10% of the data for training", "Received: dataset.val_fraction=0.5"]),
    ("activation-unknown", ["train", "model=mlp", "model.activation=relux"], {},
     ["`model.activation` must be one of", "Received: model.activation='relux'"]),
    ("model-does-not-fit-data", ["train", "dataset=iris", "model=cnn"], {}, ["model=cnn needs image data",
                                                                              "input_shape=(4,)"]),
    ("stateful-batch-does-not-divide", ["train", "dataset=nabiya", "model=rnn", "model.stateful=true",
                                        "trainer.batch_size=32"], {},
     ["trainer.batch_size must divide", "Received: trainer.batch_size=32"]),
    ("augmentation-on-tabular-data", ["train", *IRIS_MLP, "augmentation=image"], {}, ["augmentation=image",
                                                                                        "tabular"]),
    ("missing-required-value", ["train", "dataset=image_dir"], {},
     ["Missing required config value(s): dataset.path", "Received: dataset.path=???"]),
    # ---- `_target_` allowlist (security)
    ("target-os-system", ["train", "optimizer._target_=os.system"], {},
     ["allowlist", "keras.*, extf.*, sklearn.*", "Received: optimizer._target_='os.system'"]),
    ("target-builtins-eval", ["train", "optimizer._target_=builtins.eval"], {},
     ["allowlist", "Received: optimizer._target_='builtins.eval'"]),
    ("target-subprocess-popen", ["train", "optimizer._target_=subprocess.Popen"], {},
     ["allowlist", "Received: optimizer._target_='subprocess.Popen'"]),
    ("target-callback-subprocess", ["train", "+callbacks.evil._target_=subprocess.call", "+callbacks.evil.args=[id]"],
     {}, ["allowlist", "Received: callbacks.evil._target_='subprocess.call'"]),
    ("target-lookalike-package", ["train", "optimizer._target_=kerasx.optimizers.Adam"], {},
     ["allowlist", "Received: optimizer._target_='kerasx.optimizers.Adam'"]),
    ("target-nested", ["train", "+callbacks.evil._target_=keras.callbacks.LambdaCallback",
                       "+callbacks.evil.on_epoch_end._target_=builtins.exec"], {},
     ["`callbacks.evil.on_epoch_end._target_`", "allowlist",
      "Received: callbacks.evil.on_epoch_end._target_='builtins.exec'"]),
    # names under the allowlist that reach os.system / shutil.copy through a module's imports: extf.* (and
    # sklearn.*) targets are resolved when the config is validated, keras.* ones when they are instantiated
    ("target-reexported-os-system", ["train", "+callbacks.evil._target_=extf.cli.os.system",
                                     "+callbacks.evil.command=touch {tmp}/PWNED"], {},
     ["resolves to system from module 'posix'", "allowlist",
      "Received: callbacks.evil._target_='extf.cli.os.system'"]),
    ("target-reexported-from-keras", ["train", *IRIS_MLP, "trainer.epochs=1",
                                      "+callbacks.evil._target_=keras.src.utils.file_utils.shutil.copy",
                                      "+callbacks.evil.src={tmp}/secret.txt", "+callbacks.evil.dst={tmp}/PWNED"],
     {"secret.txt": "secret"}, ["resolves to copy from module 'shutil'", "allowlist",
                                "Received: callbacks.evil._target_='keras.src.utils.file_utils.shutil.copy'"],
     {"slow": True}),
    # ---- a project of one's own: its config folder, extf.yaml, its own code (docs/own-project.md)
    ("project-target-not-allowed", ["train", "model=mine"], project(model="build", allow=False),
     ["`model._target_` names a callable outside the allowlist", "allow_targets in the project's extf.yaml",
      "Received: model._target_='myproj.models.build'"]),
    ("project-allow-targets-on-the-command-line", ["train", "+allow_targets=[myproj]"], {},
     ["a command-line override cannot widen", "extf.yaml", "Received: +allow_targets=[myproj]"]),
    ("project-allow-targets-widened-by-a-config-file", ["train"],
     {**ALLOW_MYPROJ, "conf/project/default.yaml": "# @package _global_\nallow_targets: [myproj, other]\n"},
     ["allow_targets comes from the project's extf.yaml only", "Received: allow_targets=['myproj', 'other']"]),
    ("project-allow-targets-standard-library", ["train"], {"extf.yaml": "allow_targets: [subprocess]\n"},
     ["Python's standard library", "Received: allow_targets=['subprocess']"]),
    ("project-config-dir-missing", ["train", "--config-dir", "nope"], {},
     ["the config folder given by --config-dir does not exist", "Received: --config-dir='nope'"]),
    ("project-config-dir-of-extf-yaml-missing", ["train"], {"extf.yaml": "config_dir: nope\n"},
     ["the config folder given by config_dir in extf.yaml does not exist", "Received: config_dir='nope'"]),
    ("project-extf-yaml-unknown-key", ["train"], {"extf.yaml": "allow_target: [myproj]\n"},
     ["unknown key(s) in extf.yaml: allow_target", "Expected: config_dir, allow_targets",
      "Received: allow_target=['myproj']"]),
    ("project-config-yaml-replacing-extf-s", ["train"], {"conf/config.yaml": "seed: 1\n"},
     ["would replace extf's whole base config", "project/default.yaml", "Received: {tmp}/conf/config.yaml"]),
    ("project-model-named-like-extf-s", ["train", "model=mine"],
     {**project(model="build"), "conf/model/mine.yaml": "_target_: myproj.models.build\nname: cnn\n"},
     ["needs a `name:` of its own ('cnn' is extf's own model)", "Received: model.name='cnn'"]),
    # found once the project's function has run, at the first trial (the tracking process started, TensorFlow
    # imported): `slow`; the check itself is a unit test (test_models.py), and project-build-raises takes this path
    ("project-build-returns-no-model", ["train", "dataset=iris", "model=mine"], project(model="not_a_model"),
     ["myproj.models.not_a_model (model._target_) returned str, not a keras.Model", "Received: builtins.str"],
     {"slow": True}),
    ("project-build-raises", ["train", "dataset=iris", "model=mine", "model.units=3"], project(model="broken"),
     ["the project's myproj.models.broken (model._target_) failed", "ValueError: boom: units=3",
      "myproj/models.py\", line 14, in broken", "myproj/models.py\", line 18, in helper",
      "Received: model._target_='myproj.models.broken'"]),
    ("project-dataset-without-metadata", ["train", "dataset=mine", "model=mlp"], project(dataset="tuple_only"),
     ["myproj.data.tuple_only (dataset._target_) returned a tuple without metadata", "and task", "Received: tuple"]),
    ("project-dataset-length-mismatch", ["train", "dataset=mine", "model=mlp"], project(dataset="mismatched"),
     ["returned x and y of different lengths", "Received: len(x)=40, len(y)=30"]),
    ("project-target-module-missing", ["train", "dataset=iris", "model=mine"],
     {**project(model="build"), "conf/model/mine.yaml": "_target_: myproj.nomodule.build\nname: mine\n"},
     ["its module 'myproj.nomodule' cannot be imported", "Received: model._target_='myproj.nomodule.build'"]),
    ("target-attribute-of-no-module", ["train", *IRIS_MLP, "trainer.epochs=1",
                                       "+callbacks.x._target_=keras.src.utils.io_utils.os.system"], {},
     ["names nothing that can be imported", "Received: callbacks.x._target_='keras.src.utils.io_utils.os.system'"],
     {"slow": True}),
    # ---- names that become folders must stay in them (outputs/<experiment_name>/, outputs/studies/...)
    ("experiment-name-leaves-outputs", ["train", *IRIS_MLP, "experiment_name=../../escaped"], {},
     ["`experiment_name` becomes a folder name", "Received: experiment_name='../../escaped'"]),
    ("experiment-name-separator-sweep", ["tune", "-m", *IRIS_MLP, "experiment_name=a/b,c"], {},
     ["`experiment_name` becomes a folder name", "Received: experiment_name='a/b'"]),
    # ---- search spaces (extf tune)
    ("space-unknown-path", [*TUNE_IRIS, "+search_space.model.unitz={type:int,low:1,high:4}"], {},
     ["search_space.model.unitz", "not a key of the composed config", "Received: 'model.unitz'"]),
    ("space-low-above-high", [*TUNE_IRIS, "+search_space.model.units={type:int,low:64,high:32}"], {},
     ["search_space.model.units: low must be <= high", "Received: low=64, high=32"]),
    ("space-empty-choices", [*TUNE_IRIS, "+search_space.model.activation={type:choice,values:[]}"], {},
     ["search_space.model.activation.values must be a non-empty list", "Received: values=[]"]),
    ("space-log-from-zero", [*TUNE_IRIS, "+search_space.optimizer.learning_rate={type:float,low:0,high:0.1,"
                                         "sampling:log}"], {},
     ["search_space.optimizer.learning_rate: log sampling needs low > 0", "Received: low=0"]),
    ("space-unknown-type", [*TUNE_IRIS, "+search_space.model.batch_norm={type:boolean}"], {},
     ["search_space.model.batch_norm.type must be one of", "Received: type='boolean'"]),
    # ---- tuners
    ("objective-not-validation", [*TUNE_IRIS, "tuner.objective.name=accuracy"], {},
     ["tuner.objective.name must be a validation metric", "Received: tuner.objective.name='accuracy'"]),
    ("objective-direction-unknown", [*TUNE_IRIS, "tuner.objective.direction=up"], {},
     ["`tuner.objective.direction` must be one of", "Received: tuner.objective.direction='up'"]),
    # found from the metrics the model compiles with (Keras names them), before any trial: no training
    ("objective-not-produced", [*TUNE_IRIS, "tuner.objective.name=val_auc"], {},
     ["The objective metric 'val_auc' is not produced by this model", "val_accuracy",
      "Received: tuner.objective.name='val_auc'"]),
    ("grid-continuous-float", [*TUNE_IRIS, "tuner=grid"], {},
     ["tuner=grid needs a finite grid", "Received: search_space.optimizer.learning_rate="]),
    ("hyperband-factor-one", [*TUNE_IRIS, "tuner=hyperband", "tuner.factor=1"], {},
     ["`tuner.factor` must be at least 2", "Received: tuner.factor=1"]),
    # ---- CSV datasets
    ("csv-missing-file", ["train", "dataset=csv", "dataset.path=missing.csv", "dataset.target=y"], {},
     ["CSV file not found", "Received: dataset.path='missing.csv'"]),
    ("csv-empty-file", ["train", "dataset=csv", "dataset.path=empty.csv", "dataset.target=y"], {"empty.csv": ""},
     ["Could not read CSV file", "empty.csv", "Received:"]),
    ("csv-header-only", ["train", "dataset=csv", "dataset.path=head.csv", "dataset.target=y"],
     {"head.csv": "a,b,y\n"}, ["CSV file head.csv has no data rows", "Received: columns ['a', 'b', 'y'] and 0 rows"]),
    ("csv-missing-label-column", ["train", "dataset=csv", "dataset.path=data.csv", "dataset.target=label"],
     {"data.csv": GOOD_CSV}, ["Target column 'label' is not in data.csv", "a, b, y", "Received: dataset.target='label'"]),
    ("csv-missing-feature-column", ["train", "dataset=csv", "dataset.path=data.csv", "dataset.target=y",
                                    "dataset.features=[a,zz]"], {"data.csv": GOOD_CSV},
     ["Feature column(s) ['zz'] are not in data.csv", "Received: dataset.features="]),
    ("csv-mixed-types", ["train", "dataset=csv", "dataset.path=mixed.csv", "dataset.target=y"],
     {"mixed.csv": csv_rows("a,age,y", [f"{i},{'unknown' if i % 9 == 0 else i + 20},{i % 2}" for i in range(40)])},
     ["Column 'age' of mixed.csv mixes numbers and text", "dataset.na_values=[unknown]",
      "dataset.categorical=[age]", "Received: age="]),
    ("csv-too-many-categories", ["train", "dataset=csv", "dataset.path=ids.csv", "dataset.target=y"],
     {"ids.csv": csv_rows("user,a,y", [f"u{i},{i % 7},{i % 2}" for i in range(100_000)])},
     ["Category column 'user' of ids.csv has 100000 distinct values", "dataset.drop=[user]",
      "dataset.hash_buckets={user: 1024}", "Received: 100000 distinct values in 'user'"]),
    ("csv-one-class", ["train", "dataset=csv", "dataset.path=one.csv", "dataset.target=y"],
     {"one.csv": csv_rows("a,b,y", [f"{i},{i},cat" for i in range(40)])},
     ["single class", "Received: classes=['cat']"]),
    ("csv-too-few-rows", ["train", "dataset=csv", "dataset.path=tiny.csv", "dataset.target=y"],
     {"tiny.csv": csv_rows("a,b,y", ["1,2,0", "3,4,1", "5,6,0"])},
     ["too few samples (3)", "Received: n_samples=3"]),
    ("csv-target-all-missing", ["train", "dataset=csv", "dataset.path=gaps.csv", "dataset.target=y"],
     {"gaps.csv": csv_rows("a,b,y", [f"{i},{i % 3},NA" for i in range(40)])},
     ["Target column 'y' in gaps.csv has no values", "Received: dataset.target='y'"]),
    ("csv-single-class-string-categories", ["train", "dataset=csv", "dataset.path=one.csv", "dataset.target=y"],
     {"one.csv": csv_rows("island,a,y", [f"{'Dream' if i % 2 else 'Biscoe'},{'' if i == 3 else i},Adelie"
                                         for i in range(40)])},
     ["single class", "Received: classes=['Adelie']"]),
    ("csv-binary-with-three-classes", ["train", "dataset=csv", "dataset.path=three.csv", "dataset.target=y",
                                       "dataset.task=binary"],
     {"three.csv": csv_rows("a,b,y", [f"{i},{i},{i % 3}" for i in range(40)])},
     ["task=binary needs exactly 2 classes", "Received: 3 classes"]),
    # ---- NPZ datasets
    ("npz-missing-file", ["train", "dataset=npz", "dataset.path=missing.npz"], {},
     ["NPZ file not found", "Received: dataset.path='missing.npz'"]),
    ("npz-missing-array", ["train", "dataset=npz", "dataset.path=d.npz"],
     {"d.npz": npz(features=np.ones((40, 2)), y=np.arange(40) % 2)},
     ["Array 'x' is not in d.npz", "features", "Received: 'x'"]),
    ("npz-length-mismatch", ["train", "dataset=npz", "dataset.path=d.npz", "model=mlp"],
     {"d.npz": npz(x=np.ones((40, 2)), y=np.arange(30) % 2)},
     ["different lengths", "Received: len(x)=40, len(y)=30"]),
    ("npz-one-dimensional-x", ["train", "dataset=npz", "dataset.path=d.npz", "model=mlp"],
     {"d.npz": npz(x=np.ones(40), y=np.arange(40) % 2)}, ["must have 2 (tabular)", "Received: x.shape=(40,)"]),
    ("npz-nan", ["train", "dataset=npz", "dataset.path=nan.npz", "model=mlp"], {"nan.npz": nan_npz},
     ["NaN or infinite", "Received: first bad value at index [3, 0]"]),
    ("npz-truncated", ["train", "dataset=npz", "dataset.path=cut.npz", "model=mlp"], {"cut.npz": truncated_npz},
     ["Could not read", "cut.npz", "Received: dataset.path='cut.npz'"]),
    # ---- image folders
    ("image-dir-missing", ["train", "dataset=image_dir", "dataset.path=no_such_folder"], {},
     ["Image folder not found", "Received: dataset.path='no_such_folder'"]),
    ("image-dir-empty", ["train", "dataset=image_dir", "dataset.path=imgs"], {"imgs": FOLDER},
     ["needs at least 2 class sub-folders", "Received: 0 sub-folder(s)"]),
    ("image-dir-no-sub-folders", ["train", "dataset=image_dir", "dataset.path=imgs"],
     {"imgs/a.png": png, "imgs/b.png": png}, ["needs at least 2 class sub-folders", "Received: 0 sub-folder(s)"]),
    ("image-dir-class-without-images", ["train", "dataset=image_dir", "dataset.path=imgs"],
     {"imgs/cats/a.png": png, "imgs/dogs/notes.txt": "no images here"},
     ["Class folder 'dogs' has no images", "Received:"]),
    ("image-dir-broken-image", ["train", "dataset=image_dir", "dataset.path=imgs"],
     {"imgs/cats/a.png": png, "imgs/dogs/b.png": b"not a png"}, ["Cannot read image", "Received: b.png"]),
    ("image-dir-cut-image", ["train", "dataset=image_dir", "dataset.path=imgs"],
     {"imgs/cats/a.png": png, "imgs/cats/b.png": png, "imgs/dogs/c.png": cut_png},
     ["Cannot read image", "c.png", "cut or damaged PNG", "dataset.skip_bad_files=true", "Received: c.png"]),
    # found while the first epoch reads it (its ends look complete): a real (1-epoch) start of training
    ("image-dir-damaged-inside", ["train", "dataset=image_dir", "dataset.path=imgs", "dataset.height=8",
                                  "dataset.width=8", "trainer.epochs=1"],
     {**{f"imgs/{c}/{i}.png": png for c in ("cats", "dogs") for i in range(6)}, "imgs/dogs/z.png": damaged_inside},
     ["Cannot decode image", "z.png", "data is damaged", "Received: z.png"], {"slow": True}),
    ("image-dir-autoencoder", ["train", "dataset=image_dir", "dataset.path=imgs", "model=autoencoder"],
     {"imgs/cats/a.png": png, "imgs/cats/b.png": png, "imgs/dogs/c.png": png, "imgs/dogs/d.png": png},
     ["model=autoencoder reconstructs in-memory datasets only", "Received: model.name='autoencoder'"]),
    ("image-dir-empty-class-folder", ["train", "dataset=image_dir", "dataset.path=imgs"],
     {"imgs/cats/a.png": png, "imgs/dogs": FOLDER}, ["Class folder 'dogs' has no images", "Received:"]),
    ("image-dir-only-bad-files-skipped", ["train", "dataset=image_dir", "dataset.path=imgs",
                                          "dataset.skip_bad_files=true"],
     {"imgs/cats/a.png": png, "imgs/dogs/b.png": b"junk"},
     ["Class folder 'dogs' has only unreadable images (1, skipped)", "Received:"]),
    # ---- inference without a study
    ("evaluate-without-run-id", ["evaluate"], {}, ["`run_id` is required", "Received: run_id=None"]),
    ("predict-without-input", ["predict", "run_id=abc"], {}, ["needs input=", "Received: input=None"]),
    # found before the tracking process, TensorFlow or MLflow start (a new folder: no store to look in)
    ("init-from-unknown-run", ["train", *IRIS_MLP, "init_from=0123456789abcdef"], {},
     ["No MLflow run with id '0123456789abcdef'", "there is no MLflow store there yet", "extf runs",
      "Received: init_from='0123456789abcdef'"]),
]


RUN = "run_id={run}"
# (id, argv, files to create first (in a fresh folder, {tmp}), needles); {run}: the study, {trial}: one of its trials
RUN_CASES = [
    ("evaluate-unknown-run", ["evaluate", "run_id=0123456789abcdef"], {},
     ["No MLflow run with id '0123456789abcdef'", "extf runs", "Received: run_id='0123456789abcdef'"]),
    ("evaluate-trial-run", ["evaluate", "run_id={trial}"], {}, ["is a trial", "parent run", "Received: run_id="]),
    ("evaluate-other-dataset-shape", ["evaluate", RUN, "dataset=wine"], {},
     ["The model takes inputs of shape (4,)", "Received: input shape (13,)"]),
    ("predict-image-folder-to-a-tabular-model", ["predict", RUN, "input={tmp}/imgs", "output={tmp}/p.csv"], {"imgs/a.png": png},
     ["Images need a model that takes images", "Give it a .csv or .npy file", "Received: input shape (4,)"]),
    ("runs-unknown-run", ["runs", "run_id=nope"], {}, ["No MLflow run with id 'nope'", "Received: run_id='nope'"]),
    ("runs-unknown-experiment", ["runs", "experiment=nope"], {},
     ["No MLflow experiment named 'nope'", "Received: experiment='nope'"]),
    ("predict-unknown-run", ["predict", "run_id=nope", "input={tmp}/x.csv", "output={tmp}/p.csv"],
     {"x.csv": "a,b,c,d\n1,2,3,4\n"}, ["No MLflow run with id 'nope'", "Received: run_id='nope'"]),
    ("predict-trial-run", ["predict", "run_id={trial}", "input={tmp}/x.csv", "output={tmp}/p.csv"],
     {"x.csv": "a,b,c,d\n1,2,3,4\n"}, ["is a trial", "Received: run_id="]),
    ("predict-missing-input", ["predict", RUN, "input={tmp}/missing.csv", "output={tmp}/p.csv"], {},
     ["Prediction input not found", "missing.csv", "Received: input="]),
    ("predict-wrong-feature-count", ["predict", RUN, "input={tmp}/x.csv", "output={tmp}/p.csv"],
     {"x.csv": "a,b,c\n1,2,3\n4,5,6\n"}, ["The model takes inputs of shape (4,)", "Received: input shape (3,)"]),
    ("predict-non-numeric-input", ["predict", RUN, "input={tmp}/x.csv", "output={tmp}/p.csv"],
     {"x.csv": "a,b,c,d\n1,2,3,red\n"}, ["are not numeric", "Received: columns"]),
    ("predict-truncated-npy", ["predict", RUN, "input={tmp}/x.npy", "output={tmp}/p.csv"], {"x.npy": truncated_npy},
     ["Could not read x.npy as a NumPy .npy array", "Received: input="]),
    ("predict-unsupported-input", ["predict", RUN, "input={tmp}/x.txt", "output={tmp}/p.csv"],
     {"x.txt": "1 2 3 4\n"}, ["Unsupported prediction input x.txt", "Received: input="]),
    ("predict-output-dir-missing", ["predict", RUN, "input={tmp}/x.csv", "output=/proc/nope/p.csv"],
     {"x.csv": "a,b,c,d\n1,2,3,4\n"}, ["Cannot create the folder '/proc/nope'",
                                        "Received: output='/proc/nope/p.csv'"]),
    ("predict-output-is-a-folder", ["predict", RUN, "input={tmp}/x.csv", "output={tmp}/out"],
     {"x.csv": "a,b,c,d\n1,2,3,4\n", "out": FOLDER}, ["is a folder", "Received: output="]),
    ("init-from-trial-run", ["train", *IRIS_MLP, "trainer.epochs=1", "init_from={trial}"], {},
     ["is a trial", "Received: init_from="]),
    # security: a Lambda layer runs arbitrary Python when its model is loaded; refused unless the user opts in
    ("lambda-layer-refused-evaluate", ["evaluate", "run_id={lambda_run}"], {},
     ["Refused to load the model of run {lambda_run}", "Lambda layer", "unsafe_load=true",
      "Received: run {lambda_run}"]),
    # a table model (string categories, NA cells) takes its training columns: one missing or unknown is refused
    ("predict-table-column-missing", ["predict", "run_id={table_run}", "input={tmp}/rows.csv", "output={tmp}/p.csv"],
     {"rows.csv": "island,bill\nDream,40.1\n"}, ["rows.csv lacks column(s) ['sex']", "Received: columns"]),
    ("predict-table-extra-column", ["predict", "run_id={table_run}", "input={tmp}/rows.csv", "output={tmp}/p.csv"],
     {"rows.csv": "island,bill,sex,colour\nDream,,male,red\n"},
     ["rows.csv has column(s) ['colour'] that the training data did not have", "Received: columns"]),
    ("predict-table-from-npy", ["predict", "run_id={table_run}", "input={tmp}/x.npy", "output={tmp}/p.csv"],
     {"x.npy": truncated_npy}, ["This model takes table rows: expected a .csv or .parquet file",
                                 "Received: input="]),
    ("lambda-layer-refused-predict", ["predict", "run_id={lambda_run}", "input={tmp}/x.csv", "output={tmp}/p.csv"],
     {"x.csv": "a,b,c,d\n1,2,3,4\n"}, ["Refused to load the model of run {lambda_run}", "unsafe_load=true",
                                        "Received: run {lambda_run}"]),
]


# --------------------------------------------------------------------------- running the corpus
@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple
    files: dict
    needles: tuple
    env: dict
    needs_study: bool


def _params(cases, needs_study=False):
    """Table rows -> pytest params; a row's optional 5th item: {"env": {...}, "slow": True}."""
    params = []
    for case_id, argv, files, needles, *extra in cases:
        opts = extra[0] if extra else {}
        case = Case(case_id, tuple(argv), files, tuple(needles), opts.get("env", {}), needs_study)
        slow = needs_study or opts.get("slow", False)
        params.append(pytest.param(case, id=case_id, marks=[pytest.mark.slow] if slow else []))
    return params


def fill(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def make_study(root: Path) -> dict:
    """One tiny iris study, one of its trial runs, and a copy of the study whose model has a Lambda layer."""
    proc = run_extf(["train", *IRIS_MLP, "trainer.epochs=1", "evaluation.plots=false", "tracking.log_model=false"],
                    cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name("extf")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`extf.kind` = 'study'")
    (trial,) = client.search_runs([exp.experiment_id], filter_string="tags.`extf.kind` = 'trial'")
    lambda_run = _lambda_copy(client, parent, root / "lambda")
    return {"root": root, "run": parent.info.run_id, "trial": trial.info.run_id, "lambda_run": lambda_run,
            "table_run": _table_study(root, client)}


def _table_study(root: Path, client) -> str:
    """A tiny study of a table with a string category column, NA cells and a string target."""
    rows = [f"{'Dream' if i % 3 else 'Biscoe'},{'' if i % 7 == 0 else 35 + i % 11},{'' if i % 5 == 0 else 'male'},"
            f"{'Adelie' if i % 2 else 'Gentoo'}" for i in range(60)]
    (root / "table.csv").write_text(csv_rows("island,bill,sex,species", rows))
    proc = run_extf(["train", "dataset=csv", "dataset.path=table.csv", "dataset.target=species", "model=mlp",
                     "trainer.epochs=1", "evaluation.plots=false", "tracking.log_model=false",
                     "experiment_name=tables"], cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exp = client.get_experiment_by_name("tables")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`extf.kind` = 'study'")
    return parent.info.run_id


def _lambda_copy(client, parent, workdir: Path) -> str:
    """A study run like `parent` whose logged model.keras holds a Lambda layer (Python code run on load)."""
    import keras

    (workdir / "model_files").mkdir(parents=True)
    (workdir / "download").mkdir()
    for path in ("config.yaml", "dataset.json", "model_files/model.weights.h5"):
        shutil.copy(client.download_artifacts(parent.info.run_id, path, str(workdir / "download")), workdir / path)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 1.0),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(workdir / "model_files" / "model.keras")
    run = client.create_run(parent.info.experiment_id, tags={"extf.kind": "study", "mlflow.runName": "lambda"})
    client.log_artifact(run.info.run_id, str(workdir / "config.yaml"))
    client.log_artifact(run.info.run_id, str(workdir / "dataset.json"))
    client.log_artifacts(run.info.run_id, str(workdir / "model_files"), "model_files")
    client.set_terminated(run.info.run_id)
    shutil.rmtree(workdir)
    return run.info.run_id


def rows(cases: list[Case], tmp_path_factory, study: dict | None = None) -> dict:
    """Each case's files made in a fresh folder, {tmp} (and {run}, {trial}, ... of the study) filled in: case id ->
    (the row for forked_cli, the values filled in)."""
    made = {}
    for case in cases:
        folder = tmp_path_factory.mktemp(case.id)
        make_files(folder, case.files)
        values: dict = {"tmp": folder, **{k: v for k, v in (study or {}).items() if k != "root"}}
        cwd = study["root"] if case.needs_study else folder
        made[case.id] = (forked_cli.Row(case.id, tuple(fill(a, values) for a in case.argv), cwd, case.env), values)
    return made


class Pending:
    """One case's outcome, once its process has ended: (working directory, CompletedProcess, values filled in)."""

    def __init__(self, started: Future, case_id: str):
        self.started, self.case_id = started, case_id

    def result(self):
        run, made = self.started.result()
        row, values = made[self.case_id]
        return row.cwd, forked_cli.result(run, row), values


@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory):
    """Runs every selected case as an `extf` process of its own, forked from one driver (tests/forked_cli.py: the
    interpreter's start-up and extf's imports paid once), two at a time. The cases that need the logged study (a
    training: only `slow` cases do) run once it is made, while the others run."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if item.module is request.module and "case" in getattr(getattr(item, "callspec", None), "params", {})]
    pool = ThreadPoolExecutor(2)
    needs_study = any(c.needs_study for c in cases) or any(
        item.module is request.module and "study" in item.fixturenames for item in request.session.items)

    def start(group: list[Case], study: Future | None):
        made = rows(group, tmp_path_factory, study.result() if study else None)
        return forked_cli.start([row for row, _ in made.values()], tmp_path_factory.mktemp("forked")), made

    pending: dict = {"study": None}
    started = []
    study_dir = tmp_path_factory.mktemp("study")  # pytest's base folder is made here, not by two threads at once

    def submit(group: list[Case], ready: Future | None) -> None:
        if group:
            started.append(pool.submit(start, group, ready))
            pending.update({c.id: Pending(started[-1], c.id) for c in group})

    submit([c for c in cases if not c.needs_study], None)
    wait(started)  # those rows are under way in the driver's processes; nothing else runs in a thread here
    if needs_study:
        # made here while the other rows run in their own processes, not in a thread beside the tests: its imports
        # and Keras work in a thread changed a dict as pytest iterated it ("dictionary changed size during
        # iteration", a CI run)
        pending["study"] = Future()
        try:
            pending["study"].set_result(make_study(study_dir))
        except Exception as e:  # the cases that need the study fail with it, the others go on
            pending["study"].set_exception(e)
        submit([c for c in cases if c.needs_study], pending["study"])
    yield pending
    pool.shutdown(wait=True, cancel_futures=True)
    for future in started:
        if not future.cancelled() and future.exception() is None:
            forked_cli.stop(future.result()[0])


@pytest.fixture(scope="module")
def study(corpus) -> dict:
    return corpus["study"].result()


@pytest.mark.parametrize("case", _params(CASES) + _params(RUN_CASES, needs_study=True))
def test_bad_input(corpus, case):
    cwd, proc, values = corpus[case.id].result()
    assert proc.returncode == 2, (f"exit code {proc.returncode}, expected 2 (1: an internal error, < 0: killed by a "
                                  f"signal)\n{proc.stdout}{proc.stderr}")
    assert_clean_error(proc, *[fill(n, values) for n in case.needles])
    # (cases that share the study's store never start a run themselves, so another case cannot show up here)
    assert running_runs(cwd / "mlruns") == []
    assert not (values["tmp"] / "PWNED").exists()  # target-reexported-os-system
    assert not (values["tmp"].parent / "escaped").exists()  # experiment-name-leaves-outputs
    assert not (values["tmp"] / "p.csv").exists()  # predict writes nothing when it refuses


@pytest.mark.slow
def test_lambda_layer_loads_when_the_user_opts_in(study):
    proc = run_extf(["evaluate", f"run_id={study['lambda_run']}", "unsafe_load=true"], cwd=study["root"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unsafe_load=true" in proc.stderr and "test_accuracy" in proc.stdout


# --------------------------------------------------------------------------- the MLflow UI stays on loopback
def test_ui_binds_to_loopback_only(tmp_path, monkeypatch):
    from extf.commands import ui

    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "mlflow.db").touch()
    calls = []
    monkeypatch.setattr(ui.os, "execv", lambda exe, cmd: calls.append(cmd))
    assert ui.run([f"root={tmp_path}", "port=5123"]) == 0
    (cmd,) = calls
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd.count("--host") == 1
    assert cmd[cmd.index("--port") + 1] == "5123"
    assert not any("0.0.0.0" in part for part in cmd)
    for args in (["host=0.0.0.0"], ["--host", "0.0.0.0"], ["host=192.168.1.5"]):
        with pytest.raises(ConfigError, match="127.0.0.1 only"):
            ui.run([f"root={tmp_path}", *args])
    assert len(calls) == 1
