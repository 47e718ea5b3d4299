"""A project of one's own (docs/own-project.md): `extf init`, the project's config folder and experiments on Hydra's
search path before extf's, its options in --help and in completion, shadowing, and its own code behind allow_targets.
The bad inputs are rows of tests/integration/test_bad_inputs.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from extf.errors import ConfigError
from tests import forked_cli
from tests.conftest import assert_clean_error, extf_in_process, run_extf


def extf(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_extf(args, cwd=cwd, env=env, timeout=300)


def forked(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`extf ARGS` as a process forked from one driver (tests/forked_cli.py), for commands whose output is the
    subject: help, composed configs, config errors."""
    return forked_cli.run(args, cwd, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    proc = forked(["init", "demo"], root)
    assert proc.returncode == 0, proc.stderr
    return root / "demo"


def test_init_writes_a_project_without_importing_tensorflow(tmp_path):
    code = ("import sys; from extf.commands.init import run; run([sys.argv[1], 'name=shop']); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    files = {str(p.relative_to(tmp_path / "p")) for p in (tmp_path / "p").rglob("*") if p.is_file()}
    assert {"extf.yaml", "conf/dataset/mydigits.yaml", "conf/model/mynet.yaml", "conf/search_space/mynet.yaml",
            "conf/project/default.yaml", "experiments/example.yaml", "shop/models.py", "shop/data.py", "README.md",
            "Makefile"} <= files
    assert "allow_targets: [shop]" in (tmp_path / "p" / "extf.yaml").read_text()
    assert "_target_: shop.models.build_model" in (tmp_path / "p" / "conf/model/mynet.yaml").read_text()
    assert not list(tmp_path.glob(".p-*"))  # no staging folder left behind


@pytest.mark.parametrize("args, needles", [
    (["init"], ["extf init needs the folder to create", "Received: ''"]),
    (["init", "x", "name=os"], ["new Python package name", "Received: name='os'"]),
    (["init", "x", "name=my-proj"], ["new Python package name", "Received: name='my-proj'"]),
    (["init", "taken"], ["already exists and is not an empty folder", "Received: DIR='taken'"]),
])
def test_init_bad_input(tmp_path, args, needles):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert_clean_error(forked(args, tmp_path), *needles)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine" and not (tmp_path / "x").exists()


def test_version_comes_from_one_place(tmp_path):
    from importlib.metadata import version

    import extf as package

    assert forked(["--version"], tmp_path).stdout.strip() == f"extf {package.__version__}"
    assert version("extf") == package.__version__  # pyproject's version is read from extf.__version__


def test_help_lists_the_projects_options_beside_extfs(demo):
    out = forked(["tune", "--help"], demo).stdout
    lines = {line.split(":")[0]: line for line in out.splitlines() if ": " in line}
    for group, options in {"dataset": ("mydigits", "iris"), "model": ("mynet", "myconv", "cnn"),
                           "search_space": ("mynet", "mlp"), "experiment": ("example", "digits_mlp_grid")}.items():
        assert all(f" {o}" in lines[group] or f"{o}," in lines[group] for o in options), lines[group]


def test_the_projects_defaults_experiments_and_command_line_compose_in_that_order(demo):
    def composed(*args):
        proc = forked(["tune", *args, "--cfg", "job"], demo)
        assert proc.returncode == 0, proc.stderr
        import yaml

        return yaml.safe_load(proc.stdout)

    cfg = composed()
    assert cfg["model"]["_target_"] == "myproj.models.build_model" and cfg["dataset"]["name"] == "mydigits"
    assert cfg["experiment_name"] == "myproj" and set(cfg["search_space"]) == {
        "model.units", "model.dropout", "optimizer.learning_rate"}
    cfg = composed("experiment=example")
    assert cfg["model"]["name"] == "myconv" and cfg["experiment_name"] == "myproj_example"
    cfg = composed("experiment=example", "model=mlp", "dataset=iris")
    assert cfg["model"]["name"] == "mlp" and cfg["dataset"]["name"] == "iris"


def test_completion_offers_the_projects_options(demo):
    env = {**os.environ, "COMP_LINE": "extf tune model=my", "COMP_POINT": "18", "COMP_WORDBREAKS": "=:"}
    out = subprocess.run([sys.executable, "-m", "extf.cli", "--shell-completion", "query=bash"], cwd=demo, env=env,
                         capture_output=True, text=True, timeout=120)
    assert set(out.stdout.split()) == {"myconv", "mynet"}, out.stdout + out.stderr


def test_a_project_option_shadows_extfs_and_says_so(tmp_path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "mlp.yaml").write_text((Path(__file__).parents[2] / "src/extf/conf/model/mlp.yaml")
                                                          .read_text().replace("units: 64 ", "units: 7 "))
    proc = forked(["train", "model=mlp", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0 and "units: 7\n" in proc.stdout, proc.stdout + proc.stderr
    proc = forked(["train", "model=mlp", "dataset=iris", "trainer.epochs=0"], tmp_path)  # fails after the note
    assert ("note: the project's conf/model/mlp.yaml shadows extf's model=mlp: the project's option is used"
            in proc.stderr), proc.stderr


def test_config_dir_names_another_folder(tmp_path):
    (tmp_path / "cfgs" / "dataset").mkdir(parents=True)
    (tmp_path / "cfgs" / "dataset" / "small_iris.yaml").write_text("defaults:\n  - iris\n  - _self_\nname: iris\n"
                                                                   "test_fraction: 0.3\n")
    proc = forked(["train", "--config-dir", "cfgs", "dataset=small_iris", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0 and "test_fraction: 0.3" in proc.stdout, proc.stdout + proc.stderr
    (tmp_path / "extf.yaml").write_text("config_dir: cfgs\n")
    proc = forked(["train", "dataset=small_iris", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0 and "test_fraction: 0.3" in proc.stdout, proc.stdout + proc.stderr


def test_allow_targets_opts_in_only_what_is_defined_in_the_project(tmp_path, monkeypatch):
    from extf.config.instantiate import check_defined_in_allowlist

    (tmp_path / "shopx").mkdir()
    (tmp_path / "shopx" / "__init__.py").write_text("import os\n\n\ndef build(cfg, meta):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check_defined_in_allowlist("model._target_", "shopx.build", ("shopx",))
    with pytest.raises(ConfigError, match="outside the allowlist.*allow_targets"):
        check_defined_in_allowlist("model._target_", "shopx.build", ())
    with pytest.raises(ConfigError, match="resolves to system from module 'posix'"):
        check_defined_in_allowlist("callbacks.x._target_", "shopx.os.system", ("shopx",))
    with pytest.raises(ConfigError, match="outside the allowlist"):  # a prefix is a package, not a string prefix
        check_defined_in_allowlist("model._target_", "shopxy.build", ("shopx",))


def test_a_misspelt_module_of_the_projects_function_is_refused_with_the_config(tmp_path, monkeypatch):
    """model._target_'s module is looked for when the config is validated (not once TensorFlow is imported and the
    model built), and looking for it runs none of the project's code."""
    from extf.config.validate import _check_targets

    (tmp_path / "shopq" / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/models.py"):  # each leaves a file behind when it runs
        (tmp_path / "shopq" / name).write_text(f"open({str(tmp_path / 'ran')!r}, 'a').write({name!r})\n")
    (tmp_path / "shopr").mkdir()
    (tmp_path / "shopr" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    _check_targets({"allow_targets": ["shopq"], "model": {"_target_": "shopq.sub.models.build"}})
    assert not (tmp_path / "ran").exists() and not [m for m in sys.modules if m.startswith("shopq")]
    for target in ("shopr.modles.build", "shopr.sub.models.build", "shopr.build.build"):
        with pytest.raises(ConfigError, match=f"its module '{target[:-6]}' cannot be imported.*Received: "
                                              f"dataset._target_='{target}'"):
            _check_targets({"allow_targets": ["shopr"], "dataset": {"_target_": target}})


@pytest.mark.slow
def test_the_projects_model_data_callback_and_metric_run_and_load_back(demo, tmp_path):
    """One short study of the project's own code: its model and data functions, a callback and a metric of its
    own through `_target_`, a custom layer registered with keras.saving that `extf predict` loads in safe mode. The
    study runs in this process (what it trains is the subject); `extf predict` is a process of its own, where only
    the project's import can register the layer."""
    (demo / "myproj" / "extras.py").write_text('''\
import keras


@keras.saving.register_keras_serializable(package="myproj")
class Doubling(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


class EpochCounter(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(f"{epoch}\\n")


@keras.saving.register_keras_serializable(package="myproj")
class Top3(keras.metrics.SparseTopKCategoricalAccuracy):
    def __init__(self, k=3, name="top3", **kwargs):
        super().__init__(k=k, name=name, **kwargs)


def build_doubling(cfg, meta):
    inputs = keras.Input(shape=tuple(meta.input_shape))
    x = Doubling()(keras.layers.Flatten()(keras.layers.Rescaling(meta.extra["rescale"])(inputs)))
    return keras.Model(inputs, keras.layers.Dense(meta.n_classes, activation="softmax")(x))
''')
    (demo / "conf" / "model" / "doubling.yaml").write_text(
        "_target_: myproj.extras.build_doubling\nname: doubling\nloss: null\nmetrics:\n  - accuracy\n"
        "  - {_target_: myproj.extras.Top3}\n")
    counter = tmp_path / "epochs.txt"
    proc = extf_in_process(["train", "model=doubling", "search_space=none", "trainer.epochs=2", "dataset.n_samples=300",
                            "evaluation.plots=false",
                            f"+callbacks.count={{_target_: myproj.extras.EpochCounter, path: '{counter}'}}"], demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert counter.read_text().split() == ["0", "1"]
    run_id = proc.stdout.split("MLflow: parent run ")[1].split()[0]
    import numpy as np
    from mlflow import MlflowClient

    history = MlflowClient(f"sqlite:///{demo}/mlruns/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{demo}/mlruns/mlflow.db").get_run(run_id).info.experiment_id],
        filter_string="tags.`extf.kind` = 'trial'")
    assert "val_top3" in history[0].data.metrics
    np.save(demo / "x.npy", np.full((3, 8, 8, 1), 8.0, dtype="float32"))
    proc = extf(["predict", f"run_id={run_id}", "input=x.npy", "output=p.csv"], cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len((demo / "p.csv").read_text().splitlines()) == 4
