"""The MLflow tracking process (extf.tracking.process): calls carried out there, errors raised here, its end."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from extf.errors import TrackingUnavailable
from extf.tracking.process import TrackerProcess, _signals_deferred


def tracking(tmp_path) -> dict:
    return {"enabled": True, "tracking_uri": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
            "artifact_root": str(tmp_path / "mlruns" / "artifacts"), "request_retries": 2, "request_timeout": 5,
            "log_model": True}


def runs(tmp_path, study: str | None = None) -> list[tuple[str, str]]:
    """(name, status) of every run of the store, or of the study run `study` and its trials."""
    where, args = ("", ()) if study is None else (
        " where run_uuid = ? or run_uuid in (select run_uuid from tags where key = 'mlflow.parentRunId' and value = ?)",
        (study, study))
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        return con.execute(f"select name, status from runs{where} order by start_time", args).fetchall()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One tracking process and store for the tests that neither stop nor break it (a process of its own costs an
    interpreter and MLflow's import): each logs a study of its own, reads back only that study's runs, and leaves
    no error pending; the process must still end cleanly after all of them."""
    root = tmp_path_factory.mktemp("shared-tracking")
    tracker = TrackerProcess(tracking(root), "shared").open()
    yield root, tracker
    tracker.close()
    assert tracker.proc.returncode == 0


def test_calls_are_carried_out_in_the_tracking_process(shared):
    root, tracker = shared
    assert tracker.proc.pid != os.getpid() and tracker.proc.poll() is None
    parent = tracker.start_study("proc", None, {"seed": 1}, {"dataset": "iris"})
    stand_in = tracker.start_trial(parent, "00", {"units": 8}, "worker1")  # nested under the study's run
    tracker.log_metric_history(stand_in, [(0, {"loss": 1.0}), (1, {"loss": 0.5})])
    trial = tracker.resolve(stand_in)  # while its run is open (its end forgets the stand-in)
    assert trial != stand_in and len(trial) == 32
    tracker.end_trial(stand_in, "FINISHED", {"val_accuracy_best": 0.9}, [(2, {"loss": 0.25})])
    tracker.end_run(parent, "FINISHED")
    tracker.flush()
    assert runs(root, parent) == [("proc", "FINISHED"), ("trial-00", "FINISHED")]
    with sqlite3.connect(root / "mlruns" / "mlflow.db") as con:
        tags = dict(con.execute("select key, value from tags where run_uuid = ?", (trial,)).fetchall())
        history = con.execute("select step, value from metrics where run_uuid = ? and key = 'loss' order by step",
                              (trial,)).fetchall()
    assert tags["mlflow.parentRunId"] == parent and tags["extf.worker"] == "worker1"
    assert history == [(0, 1.0), (1, 0.5), (2, 0.25)]


def test_the_data_is_logged_as_dataset_inputs_once_per_split(shared):
    """What the MLflow UI's Dataset column shows: one input per split, its context tag, logged again on resume
    without duplicates."""
    from mlflow import MlflowClient

    from extf.data import load_dataset
    from extf.data.lineage import dataset_inputs

    root, tracker = shared
    cfg = {"name": "iris", "val_fraction": 0.16, "test_fraction": 0.2, "standardize": True}
    inputs = dataset_inputs(cfg, load_dataset(cfg, 0), None)
    parent = tracker.start_study("data", None, {}, {})
    tracker.log_dataset_inputs(parent, inputs)
    tracker.log_dataset_inputs(parent, inputs)  # a resumed study logs them again: nothing is added
    tracker.end_run(parent, "FINISHED")
    tracker.flush()
    logged = MlflowClient(tracking(root)["tracking_uri"]).get_run(parent).inputs.dataset_inputs
    contexts = sorted((d.tags[0].value, d.dataset.name, d.dataset.source_type) for d in logged)
    assert contexts == [("test", "iris", "code"), ("train", "iris", "code"), ("validation", "iris", "code")]
    assert {d.dataset.digest for d in logged} == {i["digest"] for i in inputs}
    assert '"num_rows": 96' in next(d.dataset.profile for d in logged if d.tags[0].value == "train")


def test_a_tables_model_is_logged_by_the_tracking_process_which_does_without_pyarrow(shared, tmp_path):
    """A table's input example and prediction are pandas frames whose text pyarrow stores in this process; the
    tracking process has no pyarrow, yet logs them: the same values, the missing category included."""
    import json
    import math

    import pandas as pd

    example = pd.DataFrame({"island": ["Biscoe", None], "mass": [3750.0, float("nan")]})
    prediction = pd.DataFrame({"prob_a": [0.4, 0.7], "prob_b": [0.6, 0.3], "class_index": [1, 0],
                               "label": ["b", "a"]})
    table = {"columns": [{"name": "island", "kind": "category"}, {"name": "mass", "kind": "numeric"}],
             "task": "binary", "class_names": ["a", "b"], "threshold": 0.5}
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"copied, never read, by the tracking process")
    root, tracker = shared
    parent = tracker.start_study("table", None, {}, {})
    tracker.log_keras_model(parent, keras_file, example, prediction, "3.0.0", "tensorflow", table)
    tracker.end_run(parent, "FINISHED")
    tracker.flush()
    (example_file,) = [f for f in (root / "mlruns").rglob("input_example.json")  # the model this study logged
                       if f"run_id: {parent}\n" in (f.parent / "MLmodel").read_text()]
    logged = json.loads(example_file.read_text())
    assert logged["columns"] == ["island", "mass"] and logged["data"][0] == ["Biscoe", 3750.0]
    assert all(math.isnan(v) for v in logged["data"][1])  # missing stays missing (as MLflow writes it with pyarrow)
    assert str(example.dtypes["island"]) == "str"  # the caller's frame is left as it was


def test_an_error_there_is_raised_here_and_the_process_goes_on(shared):
    from mlflow.exceptions import MlflowException

    root, tracker = shared
    before = runs(root)
    with pytest.raises(MlflowException, match="not found|No run"):
        tracker.end_run("0" * 32, "FINISHED")  # pipelined: its error comes back later (here if quick)
        tracker.flush()  # at the latest here
    tracker.flush()  # raised once
    parent = tracker.start_study("proc", None, {}, {})  # still serving
    tracker.end_run(parent, "KILLED")
    tracker.flush()
    assert runs(root) == [*before, ("proc", "KILLED")]


def test_a_pipelined_error_is_raised_by_the_next_call_after_it_was_sent(tmp_path):
    """The error of a call that returned at once reaches the study at a later call, at the latest at close; that
    later call is carried out first (a run's end is never held back by an earlier error)."""
    from mlflow.exceptions import MlflowException

    tracker = TrackerProcess(tracking(tmp_path), "proc").open()
    try:
        parent = tracker.start_study("proc", None, {}, {})
        tracker.log_params("0" * 32, {"a": 1})
        with pytest.raises(MlflowException, match="not found|No run"):
            tracker.end_stale_trials(parent)  # waits for its reply, which comes after the error
        # sent as log_params sends it, minus its look for errors already back (a fast reply could raise it there)
        tracker._send("log_params", ("0" * 32, {"a": 1}), {}, wait=False)
        assert tracker.conn.poll(60)  # its error is here before the next call is made
        with pytest.raises(MlflowException, match="not found|No run"):
            tracker.end_run(parent, "FAILED", reason="stopped")
        tracker._send("set_tags", ("0" * 32, {"a": 1}), {}, wait=False)
    finally:
        with pytest.raises(MlflowException, match="not found|No run"):
            tracker.close()
    assert tracker.proc.returncode == 0
    assert runs(tmp_path) == [("proc", "FAILED")]


def test_a_store_that_cannot_be_opened_fails_at_open(tmp_path):
    (tmp_path / "mlruns").write_text("not a directory")
    tracker = TrackerProcess(tracking(tmp_path), "proc")
    try:
        with pytest.raises(Exception, match="Cannot create the MLflow store directory"):
            tracker.open()
    finally:
        tracker.close()


def test_a_dead_tracking_process_is_tracking_unavailable(tmp_path):
    tracker = TrackerProcess(tracking(tmp_path), "proc").open()
    os.kill(tracker.proc.pid, signal.SIGKILL)
    tracker.proc.wait()
    with pytest.raises(TrackingUnavailable, match="tracking process of this study stopped .exit code -9"):
        tracker.start_study("proc", None, {}, {})
    tracker.close()


def test_never_opened_is_stopped_at_once(tmp_path):
    tracker = TrackerProcess(tracking(tmp_path), "proc")
    started = time.monotonic()
    tracker.close()
    assert tracker.proc.poll() is not None and time.monotonic() - started < 5


def test_signals_deferred_arrive_when_the_block_ends():
    calls = []

    def handler(signum, frame):
        calls.append("handler")

    previous = signal.signal(signal.SIGINT, handler)  # not Python's default: pytest's process must not be interrupted
    try:
        with _signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python would run the handler here
            calls.append("end of block")
        assert calls == ["end of block", "handler"]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_local_worker_logs_through_the_chiefs_tracking_process_which_outlives_the_chief(tmp_path):
    """`attach` gives a worker a socket to the chief's tracking process (no MLflow, no store of its own); when the
    chief goes first (kill -9), the process serves the worker until it is done, so its trial run still ends."""
    chief = TrackerProcess(tracking(tmp_path), "proc")
    try:
        sock = chief.attach()  # the chief starts its workers before it opens its tracker (attach waits for it)
        parent = chief.open().start_study("proc", None, {}, {})
        worker = TrackerProcess(None, "proc", fd=os.dup(sock.fileno())).open()
        sock.close()
        trial = worker.start_trial(parent, "00", {"units": 8}, "worker1")
        worker.flush()
        chief.end_run(parent, "KILLED")
        chief.flush()
        chief.conn.close()  # the chief is gone; its tracking process is not
        time.sleep(0.5)
        assert chief.proc.poll() is None
        worker.end_trial(trial, "KILLED", reason="interrupted")
        worker.close()
        chief.proc.wait(timeout=60)  # the last socket closed: it exits
    finally:
        if chief.proc.poll() is None:
            chief.proc.kill()
    assert chief.proc.returncode == 0
    assert runs(tmp_path) == [("proc", "KILLED"), ("trial-00", "KILLED")]
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        assert con.execute("select value from tags where key = 'extf.worker'").fetchall() == [("worker1",)]
