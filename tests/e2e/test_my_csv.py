"""Acceptance, as a new user would: my own CSV (string categories, NA cells, a string target) -> `extf tune` ->
the logged model answers raw rows with an NA and an unseen category through `extf predict`, `mlflow models predict
-t csv` and `mlflow models serve` (127.0.0.1), and the study's parent run shows the data it saw."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_extf

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.long]
SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def write_penguins(path: Path, n: int = 300) -> None:
    rng = np.random.default_rng(1)
    species = rng.choice(SPECIES, n)
    bill = np.select([species == "Adelie", species == "Chinstrap"], [38.8, 48.8], 47.5) + rng.normal(0, 1.5, n)
    depth = np.where(species == "Gentoo", 15.0, 18.3) + rng.normal(0, 0.8, n)
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], n))
    sex = rng.choice(["MALE", "FEMALE"], n).astype(object)
    bill[rng.random(n) < 0.06] = np.nan
    sex[rng.random(n) < 0.06] = None
    pd.DataFrame({"island": island, "bill_length_mm": bill.round(1), "bill_depth_mm": depth.round(1), "sex": sex,
                  "species": species}).to_csv(path, index=False)


RAW_ROWS = [  # an NA cell, a missing and an unseen category
    {"island": "Biscoe", "bill_length_mm": 47.0, "bill_depth_mm": 14.8, "sex": "FEMALE"},
    {"island": "Dream", "bill_length_mm": None, "bill_depth_mm": 18.5, "sex": None},
    {"island": "Atlantis", "bill_length_mm": 39.0, "bill_depth_mm": 18.9, "sex": "MALE"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_my_csv_from_tune_to_a_served_model(tmp_path):
    write_penguins(tmp_path / "penguins.csv")
    tune = run_extf(["tune", "dataset=csv", "dataset.path=penguins.csv", "dataset.target=species", "model=mlp",
                     "tuner.max_trials=2", "trainer.epochs=4", "evaluation.plots=false", "experiment_name=penguins"],
                    cwd=tmp_path)
    assert tune.returncode == 0, tune.stdout + tune.stderr
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("penguins")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`extf.kind` = 'study'")
    run_id = parent.info.run_id
    # lineage: the data on the parent run, one dataset input per split
    inputs = parent.inputs.dataset_inputs
    assert sorted(t.value for d in inputs for t in d.tags) == ["test", "train", "validation"]
    assert {d.dataset.name for d in inputs} == {"penguins.csv"} and len(parent.data.tags["data_digest"]) == 64
    # the signature names the raw columns and their types
    import mlflow

    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert [(c.name, c.type.name) for c in info.signature.inputs.inputs] == [
        ("island", "string"), ("bill_length_mm", "double"), ("bill_depth_mm", "double"), ("sex", "string")]

    pd.DataFrame(RAW_ROWS).to_csv(tmp_path / "rows.csv", index=False)
    predict = run_extf(["predict", f"run_id={run_id}", "input=rows.csv", "output=preds.csv"], cwd=tmp_path)
    assert predict.returncode == 0, predict.stdout + predict.stderr
    ours = pd.read_csv(tmp_path / "preds.csv")
    assert len(ours) == 3 and set(ours["label"]) <= set(SPECIES)
    probs = ours[[f"prob_{s}" for s in SPECIES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    cli = subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m", f"runs:/{run_id}/model",
                          "-i", str(tmp_path / "rows.csv"), "-t", "csv", "-o", str(tmp_path / "mlflow.json"),
                          "--env-manager", "local"], capture_output=True, text=True, env=env, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    answered = pd.DataFrame(json.loads((tmp_path / "mlflow.json").read_text())["predictions"])
    assert answered["label"].tolist() == ours["label"].tolist()
    np.testing.assert_allclose(answered[[f"prob_{s}" for s in SPECIES]].to_numpy(), probs, atol=1e-5)

    # the serve command `extf tune` printed, pasted as a user would (from another directory, no MLflow variables)
    (command,) = [ln.split("serve its model: ", 1)[1] for ln in tune.stdout.splitlines() if "serve its model: " in ln]
    assert f"runs:/{run_id}/model" in command and "-p 5002" in command, command
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    pasted = {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}
    server = subprocess.Popen(["bash", "-c", command.replace("-p 5002", f"-p {port}")], cwd=tmp_path.parent,
                              env=pasted, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        served = _ask(f"http://127.0.0.1:{port}", {"dataframe_records": RAW_ROWS}, server, tmp_path / "serve.log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    served = pd.DataFrame(served["predictions"])
    assert served["label"].tolist() == ours["label"].tolist()
    np.testing.assert_allclose(served[[f"prob_{s}" for s in SPECIES]].to_numpy(), probs, atol=1e-5)


def _ask(url: str, payload: dict, server, log: Path, timeout: float = 180) -> dict:
    """POST /invocations once the server answers /ping."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"`mlflow models serve` exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"`mlflow models serve` did not answer within {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())
