"""MLflow in a process of its own, so that its start-up overlaps TensorFlow's.

`import mlflow` and its SQLAlchemy store are ~1.8 s of Python imports per study (2.5 s with a new store). In the
study's own process they cannot overlap TensorFlow's 3 s import: both are Python under one GIL (a thread made it
slower). A study with tracking on starts this process first thing, before it imports TensorFlow: the tracking process
imports MLflow on the other core meanwhile, then serves the tracker's calls (`MlflowTracker`'s methods, the Tracker
protocol) one at a time, in order, over a socket. It never imports TensorFlow: the best model reaches it as the saved
`.keras` file (keras_flavor).

Calls that return nothing are pipelined: sent without waiting, so the study trains on while the store writes (a
trial's writes cost the study next to nothing; bench P3b). `start_trial` is pipelined too: it returns a stand-in run
id that the tracking process replaces by the run's id in every later call, until `end_trial` ends that run. Errors travel back and are raised in the
study's process: a waiting call's own error by that call; a pipelined call's error by the first call made after it
arrived (after that call was sent: a run's end is never held back by an earlier error), at the latest by `flush` or
`close`. A lost tracking process is TrackingUnavailable at the next call, as a lost server is.

The local workers of a distributed search (`tuner.workers=N`) log through the chief's tracking process: the chief
hands each a socket of its own to it when it starts the worker (`attach`; the worker finds it in EXTF_TRACKING_FD and
joins, `TrackerProcess.start`), so a worker neither imports MLflow nor opens the store. Remote workers start their own.

Once MLflow is imported, the tracking process lowers its own priority (`NICENESS`): its store writes then take the
cycles TensorFlow leaves idle rather than ones a trial's threads would have had (on 2 cores they compete), and
when the study waits for it (a flush, the final model) it has the cores to itself anyway.

The tracking process ignores SIGINT and SIGTERM, so that a Ctrl-C, which the terminal sends to the whole process
group, still lets the study end its runs KILLED through it; it exits when every process it serves (the study's, its
local workers) has closed its socket or died.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing import reduction
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from extf.console import freeze_startup_objects
from extf.errors import ExtfError, TrackingUnavailable
from extf.tracking.protocol import STALE_REASON, History, tracker_methods

_DEFERRED = {signal.SIGINT, signal.SIGTERM}
STAND_IN = "extf-pending-run:"  # a stand-in run id: "extf-pending-run:<seq of the start_trial call>"
ENV_FD = "EXTF_TRACKING_FD"  # a local worker's socket to the chief's tracking process
NICENESS = 10  # added to the tracking process's nice value once MLflow is imported (see the module's docstring)


class TrackerProcess:
    """The study's side: the Tracker protocol, each call carried out by MlflowTracker in the tracking process."""

    def __init__(self, tracking: dict | None, experiment_name: str, fd: int | None = None):
        """Start the tracking process; it opens the store (`tracking`: the tracking config) as soon as MLflow is
        imported, creating it if new, while this process goes on (`open` waits for it). With `fd`: no process of
        its own, but a socket to one another process started (a local worker's to the chief's)."""
        self.lock = threading.Lock()  # the main thread and the workers' watcher thread both log
        self.sent = 0
        self.error: BaseException | None = None  # the first error of a pipelined call, not raised yet
        self.opened = False  # open() was called (else close() need not wait for MLflow's import)
        self.ready = False  # the store is open: calls are served
        if fd is not None:
            self.proc, self.conn = None, Connection(fd)
            return
        ours, theirs = socket.socketpair()
        with theirs:
            self.proc = subprocess.Popen([sys.executable, "-m", "extf.tracking.process", str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        self.conn = Connection(ours.detach())
        self._send("open", (tracking, experiment_name), {}, wait=True)

    @classmethod
    def start(cls, tracking: dict, experiment_name: str) -> TrackerProcess:
        """A tracking process for this study, or, in a local worker, the socket to its chief's (EXTF_TRACKING_FD)."""
        fd = os.environ.pop(ENV_FD, "")
        return cls(None, experiment_name, fd=int(fd)) if fd.isdigit() else cls(tracking, experiment_name)

    def attach(self) -> socket.socket:
        """A new socket to the tracking process, for a local worker to log through (its end; close it here once
        the worker has it)."""
        self.open()  # the reply to `open` comes first on this socket
        ours, theirs = socket.socketpair()
        with self.lock, theirs:
            seq = self._send("attach", (), {}, wait=True)
            with _signals_deferred():
                reduction.send_handle(self.conn, theirs.fileno(), self.proc.pid if self.proc else 0)
            self._receive(seq)
        return ours

    def open(self) -> TrackerProcess:
        """Once the store is open; raises what opening it in-process would have raised."""
        if self.ready:
            return self
        self.opened = True
        if self.proc is not None:  # else the chief's process opened the store
            with self.lock:
                self._receive(1)
        self.ready = True
        return self

    def close(self) -> None:
        """Wait for the calls sent so far, then let the tracking process exit (at once if the tracker was never
        opened); raises the first error of a pipelined call not raised yet."""
        if self.proc is not None and self.proc.poll() is not None:
            return
        try:
            if self.ready:
                self.flush()
        except TrackingUnavailable:
            if self.proc is not None and self.proc.poll() is None:
                raise  # a lost server (the process is fine): the study says so
            # else the tracking process stopped: nothing more to wait for
        finally:
            self._stop()

    def _stop(self) -> None:
        self.conn.close()
        if self.proc is None:
            return
        if not self.opened:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # ------------------------------------------------------------------ the Tracker protocol
    def start_study(self, name: str, run_id: str | None, params: dict, tags: dict) -> str | None:
        """Start the study's parent run, or continue `run_id` when the study resumes; its run id."""
        return self._call("start_study", name, run_id, params, tags)

    def start_trial(self, parent_id: str | None, trial_id: str, params: dict,
                    worker_id: str | None = None) -> str | None:
        """Start a trial's run, pipelined: a stand-in run id that later calls of this tracker accept."""
        if parent_id is None:
            return None
        with self.lock:
            seq = self._send("start_trial", (parent_id, trial_id, params, worker_id), {}, wait=False, keep=True)
            self._raise_pending()
        return f"{STAND_IN}{seq}"

    def end_trial(self, run_id: str | None, status: str, metrics: dict[str, float] | None = None,
                  history: History | None = None, reason: str | None = None) -> None:
        """End a trial's run with its summary metrics and the history not logged yet, in one write."""
        self._post("end_trial", run_id, status, metrics, history, reason)

    def end_stale_trials(self, parent_id: str, status: str = "KILLED", reason: str = STALE_REASON,
                         worker: str | None = None) -> int:
        """End the trial runs of `parent_id` (of one worker, if given) still RUNNING; how many there were."""
        return self._call("end_stale_trials", parent_id, status, reason, worker)

    def end_run(self, run_id: str | None, status: str, reason: str | None = None) -> None:
        """End a run FINISHED, FAILED or KILLED, with `reason` as its failure-reason tag."""
        self._post("end_run", run_id, status, reason)

    def log_params(self, run_id: str | None, params: dict) -> None:
        """Log params (dotted names), which cannot change once logged."""
        self._post("log_params", run_id, params)

    def log_metrics(self, run_id: str | None, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at one step."""
        self._post("log_metrics", run_id, metrics, step)

    def log_metric_history(self, run_id: str | None, rows: History) -> None:
        """Log many (step, metrics) rows in as few writes as the store allows."""
        self._post("log_metric_history", run_id, rows)

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        """Set tags."""
        self._post("set_tags", run_id, tags)

    def replace_tags(self, run_id: str | None, prefix: str, tags: dict[str, Any]) -> None:
        """Set `tags` and delete the run's other tags whose key starts with `prefix`."""
        self._post("replace_tags", run_id, prefix, tags)

    def log_artifacts(self, run_id: str | None, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy a directory's files into the run's artifacts."""
        self._post("log_artifacts", run_id, local_dir, artifact_path)

    def log_keras_model(self, run_id: str | None, keras_file: str | Path, x_example, prediction,
                        keras_version: str, keras_backend: str, table: dict | None = None) -> None:
        """Log a saved `.keras` file as an MLflow Keras model with signature and input example."""
        self._post("log_keras_model", run_id, keras_file, _portable_frame(x_example), _portable_frame(prediction),
                   keras_version, keras_backend, table)

    def log_dataset_inputs(self, run_id: str | None, inputs: list[dict]) -> None:
        """Log the data the run saw as MLflow dataset inputs, one per split."""
        self._post("log_dataset_inputs", run_id, inputs)

    def flush(self) -> None:
        """Wait until every call made so far is carried out; raise the first error not raised yet."""
        self._call("flush")

    # ------------------------------------------------------------------ beyond the protocol
    def resolve(self, run_id: str | None) -> str | None:
        """The MLflow run id a stand-in from `start_trial` stands for (waits for that call), until the trial's run
        has ended."""
        if not (isinstance(run_id, str) and run_id.startswith(STAND_IN)):
            return run_id
        return self._call("resolve", run_id)

    # ------------------------------------------------------------------ the wire
    def _call(self, name: str, *args):
        """A call whose result the caller needs: send it, wait for its reply."""
        with self.lock:
            seq = self._send(name, args, {}, wait=True)
            value = self._receive(seq)
            self._raise_pending()
            return value

    def _post(self, name: str, *args) -> None:
        """A call that returns nothing: send it and go on; its error, if any, comes back later."""
        if args and args[0] is None:  # no run: nothing to do (NullTracker's and MlflowTracker's rule too)
            return
        with self.lock:
            self._send(name, args, {}, wait=False)
            self._raise_pending()

    def _send(self, name: str, args: tuple, kwargs: dict, wait: bool, keep: bool = False) -> int:
        self.sent += 1
        try:
            with _signals_deferred():  # a message written halfway would put the stream out of step
                self.conn.send((self.sent, name, args, kwargs, wait, keep))
        except OSError:
            raise self._stopped() from None
        return self.sent

    def _raise_pending(self) -> None:
        """Raise the first error of a pipelined call that has arrived by now (and not been raised yet)."""
        try:
            while self.conn.poll(0):
                self._read_one(None)
        except (EOFError, OSError):
            raise self._stopped() from None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _receive(self, expected: int):
        """Wait for the reply to call `expected`; raises that call's error. Errors of pipelined calls met on the
        way are kept for `_raise_pending`."""
        try:
            while True:
                # wait interruptibly (Ctrl-C stops a slow call), then take the reply with the signals held back
                while not self.conn.poll(0.5):
                    if self.proc is not None and self.proc.poll() is not None:
                        raise EOFError
                done, ok, value = self._read_one(expected)
                if done:
                    break
        except (EOFError, OSError):
            raise self._stopped() from None
        if not ok:
            raise value
        return value

    def _read_one(self, expected: int | None) -> tuple[bool, bool, Any]:
        with _signals_deferred():  # a reply read halfway would put every later reply out of step
            seq, ok, value, waited = self.conn.recv()
        if seq == expected:
            return True, ok, value
        if not waited and not ok and self.error is None:  # a pipelined call's error (they reply only with one)
            self.error = value
        return False, ok, value  # else the reply to a call a Ctrl-C abandoned

    def _stopped(self) -> TrackingUnavailable:
        code = "its exit code is the chief's to see"
        if self.proc is not None:
            try:
                self.proc.wait(timeout=2)  # it may be exiting right now: its exit code says how it stopped
            except subprocess.TimeoutExpired:
                pass
            code = f"exit code {self.proc.poll()}"
        return TrackingUnavailable(
            f"The MLflow tracking process of this study stopped ({code}; its messages are above). Everything "
            f"logged before stays in the store, and the study's state in outputs/studies/: re-run the same command "
            f"to resume the study.")


class _signals_deferred:
    """SIGINT and SIGTERM that arrive in the block are raised again when it ends (main thread; elsewhere Python runs
    no signal handlers anyway). Swapping the handlers, not masking: another thread would take a masked signal."""

    def __enter__(self):
        self.caught: list[int] = []
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            self.saved = {sig: signal.signal(sig, lambda signum, frame: self.caught.append(signum))
                          for sig in _DEFERRED if signal.getsignal(sig) is not None}  # None: not Python's to set

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        for sig in self.caught:
            signal.raise_signal(sig)


def serve(fd: int) -> int:
    """The tracking process: import MLflow, then carry out calls until the study's process closes the socket."""
    for sig in _DEFERRED:
        signal.signal(sig, signal.SIG_IGN)
    os.dup2(2, 1)  # the study's stdout is its report (and may be a pipe with [job N] prefixes): MLflow writes to stderr
    conn = Connection(fd)
    _without_pyarrow()
    _preload()
    freeze_startup_objects()  # else the first full collection came during the parent run's start (185 ms)
    if hasattr(os, "nice"):  # POSIX
        os.nice(NICENESS)
    if os.environ.get("EXTF_DEBUG") != "1":  # "Creating initial MLflow database tables...", alembic's migrations
        import logging

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    servers = {conn: Server()}  # one per process served (the study's, its local workers'): their stand-ins
    while servers:
        for ready in wait(list(servers)):
            if not _serve_one(ready, servers):
                ready.close()
                del servers[ready]  # that process closed its socket or died; the others go on
    return 0


def _serve_one(conn: Connection, servers: dict) -> bool:
    """Carry out the next call on `conn`; False once that socket is closed."""
    try:
        seq, name, args, kwargs, waits, keep = conn.recv()
    except (EOFError, OSError):
        return False
    if name == "attach":  # a socket for a local worker follows: serve it too, with the same tracker
        joined = Connection(reduction.recv_handle(conn))
        servers[joined] = Server(servers[conn].tracker)
        ok, result = True, None
    else:
        ok, result = servers[conn].handle(seq, name, args, kwargs, keep)
    if ok and not waits:  # a pipelined call replies only with its error
        return True
    try:
        conn.send((seq, ok, result, waits))
    except (EOFError, OSError):
        return False
    return True


class Server:
    """The tracking process's side: the tracker, and the run ids that stand-ins (pipelined start_trial) stand for."""

    METHODS = frozenset(tracker_methods())

    def __init__(self, tracker=None):
        self.tracker = tracker
        self.kept: dict[str, str | None] = {}  # stand-in -> run id

    def handle(self, seq: int, name: str, args: tuple, kwargs: dict, keep: bool = False) -> tuple[bool, Any]:
        """(True, result) or (False, the error to raise in the study's process)."""
        try:
            result = self.dispatch(name, args, kwargs)
            if keep:
                self.kept[f"{STAND_IN}{seq}"] = result
            elif name == "end_trial" and args:  # its run has ended: no later call names it (a long study's map
                self.kept.pop(args[0], None)  # would grow by one entry per trial); kept if the end failed
            return True, result
        except BaseException as e:  # noqa: BLE001 - every error goes back to the study's process
            if os.environ.get("EXTF_DEBUG") == "1" and not isinstance(e, ExtfError):
                import traceback

                traceback.print_exc()  # to stderr: the study's process shows its own traceback too
            return False, _portable(e)

    def dispatch(self, name: str, args: tuple, kwargs: dict):
        """Carry out one call: `open` (the store), `resolve` (a stand-in), or a method of the Tracker protocol."""
        if name == "open":
            from omegaconf import OmegaConf

            from extf.tracking.mlflow_tracker import make_tracker

            tracking, experiment_name = args
            self.tracker = make_tracker(OmegaConf.create({"tracking": tracking}), experiment_name)
            return None
        args = tuple(self._run_id(a) for a in args)
        if name == "resolve":
            return args[0]
        if name not in self.METHODS:
            raise ExtfError(f"The tracking process has no call {name!r}. Expected one of the Tracker protocol's "
                            f"methods: {', '.join(sorted(self.METHODS))}. Received: {name!r}")
        return getattr(self.tracker, name)(*args, **kwargs)

    def _run_id(self, value):
        if isinstance(value, str) and value.startswith(STAND_IN):
            if value not in self.kept:  # its start_trial failed (that error went back already), or its run ended
                raise ExtfError(f"The trial run {value} is not open: it was never started (see the error before "
                                f"this one) or it has ended already. Received: run_id={value!r}")
            return self.kept[value]
        return value


def _without_pyarrow() -> None:
    """Keep pyarrow out of the tracking process: pandas imports it when it is installed (35 MB resident, with
    MLflow's import), yet nothing here needs it (MLflow only for HDFS artifacts). pandas then stores text in Python
    objects; the frames the study sends come that way (`_portable_frame`)."""
    sys.modules.setdefault("pyarrow", None)  # `import pyarrow` raises ImportError, as when it is not installed


def _portable_frame(value):
    """A pandas DataFrame with its text (values, column names) stored as Python objects rather than by pyarrow,
    which the tracking process does without (`_without_pyarrow`): the same values and missing values. Anything
    else as it is."""
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(value, pd.DataFrame):
        return value
    arrow = {c: pd.StringDtype("python", na_value=t.na_value) for c, t in value.dtypes.items()
             if isinstance(t, pd.StringDtype) and t.storage == "pyarrow"}
    frame = value.astype(arrow) if arrow else value.copy(deep=False)
    frame.columns = pd.Index(list(frame.columns), dtype=object)
    if isinstance(frame.index.dtype, pd.StringDtype):
        frame.index = pd.Index(list(frame.index), dtype=object)
    return frame


def _preload() -> None:
    """What the tracker will need, imported now, while the study's process imports TensorFlow."""
    import mlflow  # noqa: F401
    import mlflow.pyfunc  # noqa: F401 - the logged model's python_function flavor (a lazy import of MLflow's)
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401
    from mlflow.models import Model, infer_signature  # noqa: F401
    from mlflow.tracking.context.registry import resolve_tags

    import extf.tracking.keras_flavor  # noqa: F401

    resolve_tags()  # logging a model adds MLflow's context tags; the git one (GitPython's import, a `git` call)
    # is looked up once per process: now rather than while the study waits for its final model to be logged


def _portable(e: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else an ExtfError with its text."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001
        return ExtfError(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    code = serve(int(sys.argv[1]))
    sys.stderr.flush()
    os._exit(code)  # every call is done and stored: skip the interpreter's tear-down (0.3 s of MLflow's atexit work)
