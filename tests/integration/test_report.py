"""`extf report`: one self-contained HTML file of a study, logged on its parent run; one clear message per bad input."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forked_cli
from tests.conftest import assert_clean_error, extf_in_process, running_runs

NO_TF = ("import sys\nfrom extf.cli import main\nmain(['report', *sys.argv[1:]])\n"
         "print('TENSORFLOW_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TENSORFLOW')")
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I)


def table_after(html: str, heading: str, header: bool = False) -> list[list[str]]:
    """The rows (cell texts) of the first table after `heading`, with its header row first if `header`."""
    section = html[html.index(heading):]
    table = section[section.index("<thead>" if header else "<tbody>"):section.index("</tbody>")]
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)]


def shown_test_metrics(html: str) -> dict[str, str]:
    """test_* metric -> value as the report shows it: the metrics table plus the class x metric table."""
    shown = dict(table_after(html, "Test metrics"))
    if "<h3>Per class" in html:
        (_, *metrics), *rows = table_after(html, "<h3>Per class", header=True)
        shown |= {f"test_{m}_{row[0]}": v for row in rows for m, v in zip(metrics, row[1:]) if v}
    return shown


def assert_self_contained(html: str) -> None:
    assert not REMOTE.findall(html) and "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html


def report_path(stdout: str) -> Path:
    return Path(re.search(r"^  (/\S+\.html)$", stdout, re.M).group(1))


def logged_report(root, run_id: str):
    (path,) = (root / "mlruns" / "artifacts").glob(f"*/{run_id}/artifacts/report.html")
    return path


def run_status(root, run_id: str) -> str:
    with sqlite3.connect(root / "mlruns" / "mlflow.db") as con:
        return con.execute("select status from runs where run_uuid = ?", (run_id,)).fetchone()[0]


# ---- fast: a store written with MlflowClient (no training) -------------------------------------------------------

@pytest.fixture(scope="module")
def fake_store(tmp_path_factory):
    """A `train` study (minimised val_loss, 4 trials: categorical, log-scale, conditional hps, one FAILED), one of its
    trials and a run extf did not log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.entities import Metric, Param

    from extf.tracking.mlflow_tracker import MlflowTracker

    def log(run_id: str, params: dict, metrics: dict) -> None:
        client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()])

    root = tmp_path_factory.mktemp("report-fake")
    # the store and the experiment made as a study makes them (artifacts under mlruns/artifacts/fake)
    tracker = MlflowTracker(f"sqlite:///{root}/mlruns/mlflow.db", str(root / "mlruns" / "artifacts"), "fake")
    client, exp = tracker.client, tracker.experiment_id
    plain = client.create_run(exp).info.run_id
    study = client.create_run(exp, tags={"extf.kind": "study", "extf.study": "fake", "command": "train",
                                         "dataset": "sine", "model": "rnn", "tuner": "random", "task": "regression",
                                         "best_trial_id": "1"}).info.run_id
    log(study, {"tuner.objective.name": "auto", "tuner.objective.direction": "auto", "best.model.units": "64",
                "best.model.cell": "gru", "best.optimizer.learning_rate": "0.003"},
        {"best_val_loss": 0.125, "test_mse": 0.123456, "test_r2": 0.8765})
    trials = [("0", "FINISHED", 0.5, {"model.units": "32", "model.cell": "lstm", "optimizer.learning_rate": "0.0001"}),
              ("1", "FINISHED", 0.125, {"model.units": "64", "model.cell": "gru", "optimizer.learning_rate": "0.003",
                                        "model.units_2": "16"}),
              ("2", "FAILED", None, {"model.units": "128", "model.cell": "simple_rnn",
                                     "optimizer.learning_rate": "0.01"}),
              ("3", "FINISHED", 0.25, {"model.units": "96", "model.cell": "gru", "optimizer.learning_rate": "0.001"})]
    ids = {}
    for tid, status, value, params in trials:
        tags = {"mlflow.parentRunId": study, "extf.kind": "trial", "extf.trial_id": tid}
        if status == "FAILED":
            tags["extf.failure_reason"] = "NaN loss at epoch 2"
        ids[tid] = run = client.create_run(exp, tags=tags).info.run_id
        log(run, params, {} if value is None else {"val_loss_best": value, "epochs_trained": 3})
        client.set_terminated(run, status)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    (root / "plots").mkdir()
    fig.savefig(root / "plots" / "roc.png")
    client.log_artifact(study, str(root / "plots" / "roc.png"), "plots")
    for run in (plain, study):
        client.set_terminated(run)
    return {"root": root, "study": study, "plain": plain, "trial": ids["2"]}


def test_report_of_a_logged_study_without_tensorflow(fake_store):
    root, study = fake_store["root"], fake_store["study"]
    proc = subprocess.run([sys.executable, "-c", NO_TF, f"run_id={study}", "output=fake.html"], cwd=root,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "EXTF_ROOT": str(root)})
    assert proc.returncode == 0 and "NO_TENSORFLOW" in proc.stdout, proc.stdout + proc.stderr
    html = (root / "fake.html").read_text(encoding="utf-8")
    assert report_path(proc.stdout) == root / "fake.html" and "file://" in proc.stdout
    board = table_after(html, "<h2>Leaderboard</h2>")
    assert [row[1] for row in board] == ["1", "3", "0", "2"]  # val_loss minimised: lowest first, FAILED last
    assert board[-1][2] == "FAILED" and "NaN loss at epoch 2" in board[-1][-1]
    assert shown_test_metrics(html) == {"test_mse": "0.1235", "test_r2": "0.8765"}
    assert "minimise" in html and "<svg" in html and "RandomForestRegressor" in html
    assert html.count("<polyline") == 4 and 'class="failed"' in html
    assert '<img src="data:image/png;base64,' in html
    assert_self_contained(html)
    assert logged_report(root, study).read_text(encoding="utf-8") == html
    assert run_status(root, study) == "FINISHED"


@pytest.mark.parametrize("arg, needles", [
    (None, ["No finished `extf tune` study", "Received: no run_id"]),
    ("run_id=0123456789abcdef", ["No MLflow run with id '0123456789abcdef'", "extf runs"]),
    ("trial", ["is a trial, not a study", "Received: run_id="]),
    ("plain", ["is not an extf study", "Received: run_id="]),
])
def test_report_bad_run_ids(fake_store, arg, needles):
    root = fake_store["root"]
    args = [f"run_id={fake_store[arg]}"] if arg in ("trial", "plain") else ([arg] if arg else [])
    proc = extf_in_process(["report", *args], root)
    assert_clean_error(proc, *needles)
    if arg == "trial":
        assert f"run_id={fake_store['study']}" in proc.stderr  # names the study to report on instead
    assert running_runs(root / "mlruns") == []


@pytest.mark.parametrize("args, needles", [
    (["report"], ["no MLflow store", "extf tune", "Received: root="]),
    (["report", "colour=red"], ["unknown option 'colour=red'", "run_id=ID", "Received: 'colour=red'"]),
    (["report", "output="], ["output is empty", "Received: 'output='"]),
])
def test_report_bad_input_without_a_store(tmp_path, args, needles):
    assert_clean_error(forked_cli.run(args, tmp_path), *needles)


# ---- slow: a real tiny study ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A real tiny study and its report, both run in this process (the report is the subject, not the processes)."""
    root = tmp_path_factory.mktemp("report-tune")
    proc = extf_in_process(["tune", "dataset=iris", "model=mlp", "tuner.max_trials=3", "trainer.epochs=2",
                            "tracking.log_model=false"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(root / "mlruns" / "mlflow.db") as con:
        (parent,) = con.execute("select r.run_uuid from runs r join tags t on t.run_uuid = r.run_uuid "
                                "where t.key = 'extf.kind' and t.value = 'study'").fetchone()
        trials = dict(con.execute("select r.run_uuid, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                                  "where t.key = 'extf.trial_id'").fetchall())
    report = extf_in_process(["report"], root)  # no run_id: the latest finished `extf tune` study
    assert report.returncode == 0, report.stdout + report.stderr
    return {"root": root, "parent": parent, "trials": trials, "stdout": report.stdout}


@pytest.mark.slow
def test_report_of_a_real_study(tuned):
    from mlflow import MlflowClient

    from extf.tracking.runs import short_value

    root, parent = tuned["root"], tuned["parent"]
    path = report_path(tuned["stdout"])
    assert path == root / "outputs" / "reports" / f"extf-{parent[:8]}.html"
    html = path.read_text(encoding="utf-8")
    run = MlflowClient(f"sqlite:///{root}/mlruns/mlflow.db").get_run(parent)

    tests = {k: f"{v:.4g}" for k, v in run.data.metrics.items() if k.startswith("test_")}
    assert tests and shown_test_metrics(html) == tests
    best = {k[len("best."):]: short_value(v) for k, v in run.data.tags.items() if k.startswith("best.")}
    assert best and dict(table_after(html, "Best hyperparameters")) == best
    assert f"{run.data.metrics['best_val_accuracy']:.4g}" in html

    board = table_after(html, "<h2>Leaderboard</h2>")
    assert sorted(row[1] for row in board) == sorted(tuned["trials"].values())
    assert board[0][1] == run.data.tags["best_trial_id"] and all(row[2] == "FINISHED" for row in board)
    assert '<img src="data:image/png;base64,' in html and "learning_curves.png" in html
    assert "<svg" in html and html.count("<polyline") == len(board)
    assert_self_contained(html)


@pytest.mark.slow
def test_report_is_logged_and_the_study_stays_finished(tuned):
    root, parent = tuned["root"], tuned["parent"]
    html = report_path(tuned["stdout"]).read_text(encoding="utf-8")
    assert logged_report(root, parent).read_text(encoding="utf-8") == html
    assert run_status(root, parent) == "FINISHED"
    assert running_runs(root / "mlruns") == []
