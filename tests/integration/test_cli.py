"""The `extf` command as a user runs it: help without TensorFlow, one clear message for each bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, assert_clean_error, run_extf, running_runs

NO_TF = ("import sys, runpy; sys.argv = ['extf'] + sys.argv[1:]\n"
         "try:\n    from extf.cli import main; main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         "print('TENSORFLOW_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TENSORFLOW')")


@pytest.mark.parametrize("args", [["--help"], ["train", "--cfg", "job"], ["tune", "--cfg", "job"],
                                  ["train", "--help"]])
def test_help_and_cfg_do_not_import_tensorflow(args, tmp_path):
    out = subprocess.run([sys.executable, "-c", NO_TF, *args], capture_output=True, text=True, cwd=tmp_path)
    assert "NO_TENSORFLOW" in out.stdout, out.stdout + out.stderr
    if args == ["--help"]:
        assert "extf COMMAND" in out.stdout
    if "--cfg" in args:
        assert "model:" in out.stdout and "dataset:" in out.stdout


@pytest.mark.parametrize("args, needles", [
    (["train", "model=cnnn"], ["model/cnnn", "Available options in 'model'", "mlp", "rnn"]),
    (["train", "trainer.epochs=abc"], ["trainer.epochs", "Received: trainer.epochs='abc'"]),
    (["train", "model=mlp", "model.units=0"], ["`model.units` must be a positive integer", "Received: model.units=0"]),
    (["train", "dataset=iris", "model=cnn"], ["model=cnn needs image data", "input_shape=(4,)"]),
    (["train", "dataset=nabiya", "model=rnn", "model.stateful=true", "trainer.batch_size=32"],
     ["trainer.batch_size must divide", "Received: trainer.batch_size=32"]),
    (["train", "dataset=csv", "dataset.path=missing.csv", "dataset.target=y"],
     ["CSV file not found", "missing.csv"]),
    (["train", "dataset=csv", "dataset.path=data.csv", "dataset.target=label"],
     ["Target column 'label' is not in data.csv", "a, b, y"]),
    (["train", "dataset=npz", "dataset.path=nan.npz", "model=mlp"], ["NaN or infinite", "[3, 0]"]),
    (["train", "optimizer._target_=os.system"], ["allowlist", "os.system"]),
    (["train", "dataset=image_dir", "dataset.path=no_such_folder"], ["Image folder not found", "no_such_folder"]),
    (["train", "dataset=image_dir"], ["Missing required config value(s): dataset.path"]),
    (["train", "evaluation.threshold=1.5"], ["evaluation.threshold", "[0, 1]", "1.5"]),
    (["train", "dataset=iris", "model=mlp", "augmentation=image"], ["augmentation=image", "tabular"]),
    (["train", "paths.root_dir=/proc/no_such_dir"], ["cannot write to '/proc/no_such_dir'", "paths.root_dir"]),
    (["trian"], ["unknown command 'trian'", "train, tune, evaluate, predict, runs, ui"]),
])
def test_bad_input_gets_one_clear_message(tmp_path, args, needles):
    (tmp_path / "data.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    x = np.ones((40, 2))
    x[3, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(40) % 2)
    proc = run_extf(args, cwd=tmp_path)
    assert_clean_error(proc, *needles)
    assert running_runs(tmp_path / "mlruns") == []


def test_debug_shows_the_traceback(tmp_path):
    proc = run_extf(["train", "dataset=iris", "model=cnn"], cwd=tmp_path, env={"EXTF_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_console_script_is_installed():
    exe = ROOT / ".venv" / "bin" / "extf"
    if not exe.exists():
        pytest.skip("not running from the project's .venv")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
