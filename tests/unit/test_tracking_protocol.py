"""The Tracker protocol and its three implementations agree: same methods, same signatures, and every method of the
protocol reaches the tracker through the tracking process (extf.tracking.process) with its arguments in place."""

from __future__ import annotations

import inspect
import threading

import pytest

from extf.errors import ExtfError
from extf.tracking.mlflow_tracker import MlflowTracker
from extf.tracking.process import STAND_IN, Server, TrackerProcess
from extf.tracking.protocol import NullTracker, Tracker, tracker_methods

METHODS = tracker_methods()
PROXY_ONLY = {"open", "close", "attach", "resolve"}  # its own life, local workers, stand-in run ids


def public_methods(cls) -> set[str]:
    return {name for name, value in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_the_protocol_lists_what_the_study_calls():
    assert {"start_study", "start_trial", "end_trial", "end_stale_trials", "end_run", "log_params", "log_metrics",
            "log_metric_history", "set_tags", "replace_tags", "log_artifacts", "log_keras_model",
            "log_dataset_inputs", "flush"} == set(METHODS)


@pytest.mark.parametrize("cls, extra", [(NullTracker, set()), (MlflowTracker, set()), (TrackerProcess, PROXY_ONLY)])
def test_every_tracker_has_the_protocols_methods_and_signatures(cls, extra):
    assert public_methods(cls) == set(METHODS) | extra
    for name in METHODS:
        assert inspect.signature(getattr(cls, name)) == inspect.signature(getattr(Tracker, name)), name
        assert (getattr(cls, name).__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
    assert issubclass(cls, Tracker)  # runtime_checkable: the names at least


def test_null_tracker_is_not_the_interface_any_more():
    assert not issubclass(MlflowTracker, NullTracker) and not issubclass(TrackerProcess, NullTracker)


class Recorder:
    """A tracker that records each call (name, arguments by parameter name) and returns a result named after it."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        if name not in METHODS:
            raise AttributeError(name)

        def record(*args, **kwargs):
            bound = inspect.signature(getattr(Tracker, name)).bind(None, *args, **kwargs)
            self.calls.append((name, {k: v for k, v in bound.arguments.items() if k != "self"}))
            return f"result of {name}"
        return record


def wired_proxy(recorder: Recorder) -> TrackerProcess:
    """A TrackerProcess whose wire leads straight into a Server over `recorder` (no process, no socket)."""
    server = Server(recorder)
    proxy = object.__new__(TrackerProcess)
    proxy.lock, proxy.sent, proxy.error, replies = threading.Lock(), 0, None, {}

    def send(name, args, kwargs, wait, keep=False):
        proxy.sent += 1
        ok, value = server.handle(proxy.sent, name, args, kwargs, keep)
        if not ok:
            raise value
        replies[proxy.sent] = value
        return proxy.sent

    send.server = server  # for tests that look at the tracking process's side
    proxy._send = send
    proxy._receive = replies.pop
    proxy._raise_pending = lambda: None
    return proxy


@pytest.mark.parametrize("name", METHODS)
def test_every_protocol_method_is_dispatched_by_the_tracking_process(name):
    """Each proxy method sends its own name, with every argument reaching the parameter of the same name."""
    recorder = Recorder()
    proxy = wired_proxy(recorder)
    params = [p for p in inspect.signature(getattr(Tracker, name)).parameters.values() if p.name != "self"]
    sent = {p.name: f"<{p.name}>" for p in params}
    result = getattr(proxy, name)(**sent)
    assert recorder.calls == [(name, sent)]
    if name == "start_trial":  # pipelined: a stand-in for the run id, resolved by the tracking process
        assert result.startswith(STAND_IN) and proxy.resolve(result) == "result of start_trial"
    elif inspect.signature(getattr(Tracker, name)).return_annotation != "None":
        assert result == f"result of {name}"


def test_a_stand_in_run_id_is_replaced_in_later_calls():
    recorder = Recorder()
    proxy = wired_proxy(recorder)
    run = proxy.start_trial("parent", "07", {"units": 8}, "worker1")
    proxy.end_trial(run, "FINISHED", {"m": 1.0}, [(0, {"loss": 1.0})])
    assert recorder.calls[-1] == ("end_trial", {"run_id": "result of start_trial", "status": "FINISHED",
                                                "metrics": {"m": 1.0}, "history": [(0, {"loss": 1.0})],
                                                "reason": None})
    assert proxy.start_trial(None, "08", {}) is None  # no parent run (tracking off for it): nothing sent
    assert len(recorder.calls) == 2


def test_a_stand_in_is_forgotten_once_its_run_has_ended():
    """The tracking process maps each stand-in to its run only while the run is open: a study of many trials does
    not grow the map by one entry per trial. A trial run whose end failed keeps its entry (it may be ended again)."""
    recorder = Recorder()
    proxy = wired_proxy(recorder)
    server = proxy._send.server
    for n in range(3):
        run = proxy.start_trial("parent", f"{n:02d}", {}, None)
        assert server.kept == {run: "result of start_trial"}
        proxy.end_trial(run, "FINISHED")
        assert server.kept == {}
    with pytest.raises(ExtfError, match="has ended already"):
        proxy.resolve(run)

    def failing_end(*args, **kwargs):
        raise RuntimeError("store unavailable")

    recorder.end_trial = failing_end
    run = proxy.start_trial("parent", "03", {}, None)
    with pytest.raises(RuntimeError, match="store unavailable"):
        proxy.end_trial(run, "FINISHED")
    assert proxy.resolve(run) == "result of start_trial"


def test_a_call_missing_from_the_dispatch_is_an_error_not_a_no_op():
    server = Server(Recorder())
    ok, error = server.handle(1, "log_everything", ("run",), {})
    assert not ok and isinstance(error, ExtfError) and "has no call 'log_everything'" in str(error)
    ok, error = server.handle(2, "end_trial", (f"{STAND_IN}99", "FINISHED"), {})
    assert not ok and "was never started" in str(error)


def test_the_package_does_not_import_the_mlflow_tracker():
    """extf.tracking (the package) and extf.tracking.mlflow_tracker do not import each other."""
    import ast
    from pathlib import Path

    import extf.tracking

    init = Path(extf.tracking.__file__)
    imported = {n.module for n in ast.walk(ast.parse(init.read_text())) if isinstance(n, ast.ImportFrom)}
    assert "extf.tracking.mlflow_tracker" not in imported


def test_a_frame_crosses_to_the_tracking_process_without_pyarrow():
    """The tracking process has no pyarrow: a frame's text (values, column names) goes as Python objects, the same
    values and missing values; anything else goes as it is."""
    import pickle

    import pandas as pd

    from extf.tracking.process import _portable_frame

    frame = pd.DataFrame({"island": ["Biscoe", None], "mass": [3750.0, float("nan")]})
    portable = _portable_frame(frame)
    assert b"pyarrow" not in pickle.dumps(portable)
    assert portable.equals(frame.astype(portable.dtypes.to_dict())) and portable["island"].isna().tolist() == [
        False, True]
    assert list(portable.columns) == ["island", "mass"] and str(frame.dtypes["island"]) == "str"  # frame as it was
    assert _portable_frame([1, 2]) == [1, 2] and _portable_frame(None) is None
