"""Acceptance of issue 18, as a new user would: extf's wheel (`python -m build`: the sdist, then a wheel built from
it) in a fresh virtualenv outside the checkout, `extf init`, then a study of the project's own model, a sweep over
the project's own options, a report and predictions.

The virtualenv has no system site-packages: pip installs the wheel and its dependencies (from pip's cache when they
are there). Nothing here imports extf from the checkout.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, running_runs

QUICK = ["trainer.epochs=1", "dataset.n_samples=400", "evaluation.plots=false"]


def run(cmd: list, cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.long
def test_wheel_in_a_fresh_virtualenv_runs_a_project_of_ones_own(tmp_path):
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "EXTF_ROOT", "EXTF_DEBUG", "EXTF_CONFIG_DIR", "VIRTUAL_ENV")
           and not k.startswith("EXTF_PROJECT")}
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp_path, env=env)  # sdist, then its wheel
    (wheel,), (sdist,) = dist.glob("extf-*.whl"), dist.glob("extf-*.tar.gz")
    with tarfile.open(sdist) as tar:
        assert f"{sdist.name[:-len('.tar.gz')]}/src/extf/conf/config.yaml" in tar.getnames()
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)  # its own site-packages only
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
        cwd=tmp_path, env=env)
    installed = time.monotonic()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    extf = venv / "bin" / "extf"

    run([extf, "init", "demo"], cwd=tmp_path, env=env)
    demo = tmp_path / "demo"
    where = run([venv / "bin" / "python", "-c", "import extf; print(extf.__file__)"], cwd=demo, env=env).stdout
    assert str(venv) in where and str(ROOT) not in where, where  # the wheel's extf, not the checkout's
    assert run([extf, "--version"], cwd=demo, env=env).stdout.strip() == f"extf {wheel.name.split('-')[1]}"

    listing = run([extf, "tune", "--help"], cwd=demo, env=env).stdout
    assert re.search(r"^model: .*\bmyconv\b.*\bmynet\b", listing, re.M), listing
    assert re.search(r"^experiment: .*\bexample\b", listing, re.M), listing

    tune = run([extf, "tune", "tuner.max_trials=2", *QUICK], cwd=demo, env=env).stdout
    assert "[trial 2/2]" in tune and "study myproj:" in tune and "test (evaluated once): test_accuracy=" in tune, tune
    run_id = re.search(r"MLflow: parent run (\w+)", tune).group(1)

    sweep = run([extf, "tune", "-m", "model=mynet,myconv", "tuner.max_trials=1", "seed=7", *QUICK], cwd=demo,
                env=env).stdout
    assert "[job 0]" in sweep and "[job 1]" in sweep and sweep.count("test (evaluated once)") == 2, sweep

    report = run([extf, "report", f"run_id={run_id}"], cwd=demo, env=env).stdout
    (html,) = re.findall(r"file://(\S+\.html)", report)
    assert Path(html).is_file() and Path(html).is_relative_to(demo)

    from sklearn.datasets import load_digits

    np.save(demo / "x.npy", load_digits().images[:6, ..., np.newaxis].astype("float32"))
    run([extf, "predict", f"run_id={run_id}", "input=x.npy", "output=p.csv"], cwd=demo, env=env)
    with open(demo / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["label"] for r in rows} <= {str(d) for d in range(10)}

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{demo}/mlruns/mlflow.db")
    study = client.get_run(run_id)
    assert study.data.params["allow_targets"] == "['myproj']"
    assert study.data.params["model._target_"] == "myproj.models.build_model"
    assert {e.name for e in client.search_experiments()} >= {"myproj"}
    assert running_runs(demo / "mlruns") == []
    assert (demo / "outputs" / "studies").is_dir() and not (ROOT / "demo").exists()
    print(f"\nacceptance: {time.monotonic() - started:.0f} s in all, {installed - started:.0f} s to build and "
          f"install the wheel", file=sys.stderr)
