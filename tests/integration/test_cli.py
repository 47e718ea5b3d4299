"""The `extf` command as a user runs it: help without TensorFlow (the bad inputs: test_bad_inputs.py). The commands
whose output is the subject run as processes forked from one driver (tests/forked_cli.py), which tells which of
TensorFlow, Keras and MLflow each had imported when it ended."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import forked_cli
from tests.conftest import ROOT, run_extf


@pytest.mark.parametrize("args", [["--help"], ["train", "--cfg", "job"], ["tune", "--cfg", "job"],
                                  ["train", "--help"]])
def test_help_and_cfg_do_not_import_tensorflow(args, tmp_path):
    out = forked_cli.run(args, tmp_path)
    assert out.returncode == 0 and out.imported is not None and "tensorflow" not in out.imported, \
        (out.imported, out.stdout + out.stderr)
    if args == ["--help"]:
        assert "extf COMMAND" in out.stdout
    if "--cfg" in args:
        assert "model:" in out.stdout and "dataset:" in out.stdout


# found once the data is loaded (the model family, its batches, the augmentation against the data; a data file's
# errors; a metric the objectives need that the model does not log) or from the space and the tuner: all before
# TensorFlow's import (extf.tuning.prepare), so it costs none
@pytest.mark.parametrize("args, needle", [
    (["train", "dataset=iris", "model=cnn"], "model=cnn needs image data"),
    (["train", "dataset=nabiya", "model=rnn", "model.stateful=true", "trainer.batch_size=32"],
     "trainer.batch_size must divide"),
    (["train", "dataset=iris", "model=mlp", "augmentation=image"], "augmentation=image transforms images"),
    (["train", "dataset=digits", "model=autoencoder", "augmentation=image"], "reconstruction targets"),
    (["train", "dataset=csv", "dataset.path=missing.csv", "dataset.target=y"], "CSV file not found"),
    (["tune", "dataset=iris", "model=mlp", "+search_space.model.unitz={type:int,low:1,high:4}"],
     "search_space.model.unitz"),
    (["tune", "dataset=iris", "model=mlp", "tuner=grid"], "tuner=grid needs a finite grid"),
    (["tune", "dataset=iris", "model=mlp", "tuner.cv_folds=60"], "smallest class has"),
    (["tune", "dataset=iris", "model=mlp", "tuner.objective.name=val_auc"], "'val_auc' is not produced"),
    (["tune", "dataset=digits", "model=mlp", "model.metrics=[mae]", "tuner.objectives=[auto,params]"],
     "'val_accuracy' is not produced"),
], ids=["model-family", "stateful-batches", "augmentation", "augmentation-of-targets", "data-file", "space",
        "tuner", "folds", "objective-metric", "objective-metric-of-model-metrics"])
def test_errors_found_with_the_data_import_no_tensorflow(args, needle, tmp_path):
    out = forked_cli.run(args, tmp_path)
    assert needle in out.stderr and out.imported is not None and "tensorflow" not in out.imported, \
        (out.imported, out.stdout + out.stderr)


@pytest.mark.parametrize("args", [["train", "dataset=iris", "model=cnn"], ["train", "model=["]])
def test_debug_shows_the_traceback(tmp_path, args):
    proc = forked_cli.run(args, tmp_path, env={"EXTF_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_console_script_is_installed():
    exe = ROOT / ".venv" / "bin" / "extf"
    if not exe.exists():
        pytest.skip("not running from the project's .venv")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout


def test_command_help_is_extf_s_and_a_closed_pipe_is_no_error(tmp_path):
    shown = forked_cli.run(["train", "--help"], tmp_path)
    assert shown.returncode == 0 and shown.stdout.startswith("extf: the configuration groups"), shown.stdout[:200]
    assert "powered by Hydra" not in shown.stdout and "EXTF_DEBUG=1" in shown.stdout
    # the reader of the pipe has gone before extf writes (`extf train --help | head -0`)
    proc = subprocess.Popen([sys.executable, "-m", "extf.cli", "train", "--help"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Broken pipe" not in err, err


@pytest.mark.slow
def test_a_study_prints_extf_s_lines_only_and_everything_with_debug(tmp_path):
    """No TensorFlow start-up lines (absl, cudart), no MLflow "Creating initial MLflow database tables", no
    keras-tuner "Reloading Tuner from" on resume; EXTF_DEBUG=1 shows them again."""
    import re

    native = re.compile(r"absl::InitializeLog|^[IWE]\d{4} \d\d:\d\d:", re.M)  # not extf's own pattern
    args = ["tune", "dataset=iris", "model=mlp", "trainer.epochs=1", "tuner.max_trials=1", "evaluation.plots=false",
            "tracking.log_model=false"]
    first, again = run_extf(args, cwd=tmp_path), run_extf(args, cwd=tmp_path)
    for proc in (first, again):
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        noise = [line for line in out.splitlines() if native.search(line) or "INFO mlflow" in line
                 or "Reloading Tuner" in line]
        assert noise == [], out
    assert "Resuming study" in again.stdout
    debug = run_extf(args, cwd=tmp_path, env={"EXTF_DEBUG": "1"})
    assert "Reloading Tuner" in debug.stdout and native.search(debug.stderr), debug.stdout + debug.stderr
