"""MLflow in a process of its own, so that its start-up overlaps TensorFlow's.

`import mlflow` and its SQLAlchemy store are ~1.8 s of Python imports per study (2.5 s with a new store). In the
study's own process they cannot overlap TensorFlow's 3 s import: both are Python under one GIL (a thread made it
slower). A study with tracking on starts this process first thing, before it imports TensorFlow: the tracking process
imports MLflow on the other core meanwhile, then serves the tracker's calls (`MlflowTracker`'s methods) one at a time
over a socket. It never imports TensorFlow: the best model reaches it as the saved `.keras` file (keras_flavor).

Errors travel back and are raised in the study's process (a lost server is TrackingUnavailable there too). The
tracking process ignores SIGINT and SIGTERM, so that a Ctrl-C, which the terminal sends to the whole process group,
still lets the study end its runs KILLED through it; it exits when the study's process closes the socket or dies.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from extf.errors import ExtfError, TrackingUnavailable
from extf.tracking.mlflow_tracker import NullTracker

CALLS = ("start_study", "start_trial", "end_stale_trials", "end_run", "log_params", "log_metrics",
         "log_metric_history", "set_tags", "replace_tags", "log_artifacts", "log_keras_model", "log_dataset_inputs")
_DEFERRED = {signal.SIGINT, signal.SIGTERM}


class TrackerProcess(NullTracker):
    """The study's side: the tracker interface, each call carried out by the tracking process."""

    enabled = True

    def __init__(self, tracking: dict, experiment_name: str):
        """Start the tracking process; it opens the store (`tracking`: the tracking config) as soon as MLflow is
        imported, creating it if new, while this process goes on (`open` waits for it)."""
        ours, theirs = socket.socketpair()
        with theirs:
            self.proc = subprocess.Popen([sys.executable, "-m", "extf.tracking.process", str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        self.conn = Connection(ours.detach())
        self.lock = threading.Lock()  # the main thread and the workers' watcher thread both log
        self.sent = 0
        self.parent_id: str | None = None
        self.worker_id: str | None = None
        self.opened = False
        self._send("open", (tracking, experiment_name), {})

    def open(self) -> TrackerProcess:
        """Once the store is open; raises what opening it in-process would have raised."""
        self.opened = True
        with self.lock:
            self._receive(1, "open")
        return self

    def close(self) -> None:
        """The tracking process exits once its current call is done (at once if the tracker was never opened)."""
        if self.proc.poll() is not None:
            return
        self.conn.close()
        if not self.opened:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _call(self, name: str, *args, **kwargs):
        with self.lock:
            return self._receive(self._send(name, args, kwargs), name)

    def _send(self, name: str, args: tuple, kwargs: dict) -> int:
        self.sent += 1
        try:
            self.conn.send((self.sent, name, args, kwargs, self.parent_id, self.worker_id))
        except OSError:
            raise self._stopped() from None
        return self.sent

    def _receive(self, expected: int, name: str):
        try:
            while True:
                # wait interruptibly (Ctrl-C stops a slow call), then take the reply with the signals held back:
                # a reply read halfway would put every later reply out of step
                while not self.conn.poll(0.5):
                    if self.proc.poll() is not None:
                        raise EOFError
                with _signals_deferred():
                    seq, ok, value = self.conn.recv()
                if seq == expected:  # else the reply to a call a Ctrl-C abandoned
                    break
        except (EOFError, OSError):
            raise self._stopped() from None
        if not ok:
            raise value
        if name == "start_study":
            self.parent_id = value
        return value

    def _stopped(self) -> TrackingUnavailable:
        try:
            self.proc.wait(timeout=2)  # it may be exiting right now: its exit code says how it stopped
        except subprocess.TimeoutExpired:
            pass
        return TrackingUnavailable(
            f"The MLflow tracking process of this study stopped (exit code {self.proc.poll()}; its messages are "
            f"above). Everything logged before stays in the store, and the study's state in outputs/studies/: "
            f"re-run the same command to resume the study.")


def _remote(name: str):
    def call(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"MlflowTracker.{name}, in the tracking process."
    return call


for _name in CALLS:
    setattr(TrackerProcess, _name, _remote(_name))


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
    _preload()
    if os.environ.get("EXTF_DEBUG") != "1":  # "Creating initial MLflow database tables...", alembic's migrations
        import logging

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    from omegaconf import OmegaConf

    from extf.tracking.mlflow_tracker import make_tracker

    tracker = None
    while True:
        try:
            seq, name, args, kwargs, parent_id, worker_id = conn.recv()
        except (EOFError, OSError):
            return 0
        try:
            if name == "open":
                tracking, experiment_name = args
                tracker = make_tracker(OmegaConf.create({"tracking": tracking}), experiment_name)
                result = None
            else:
                tracker.parent_id, tracker.worker_id = parent_id, worker_id
                result = getattr(tracker, name)(*args, **kwargs)
            reply = (seq, True, result)
        except BaseException as e:  # noqa: BLE001 - every error goes back to the study's process
            if os.environ.get("EXTF_DEBUG") == "1" and not isinstance(e, ExtfError):
                import traceback

                traceback.print_exc()  # to stderr: the study's process shows its own traceback too
            reply = (seq, False, _portable(e))
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return 0


def _preload() -> None:
    """What the tracker will need, imported now, while the study's process imports TensorFlow."""
    import mlflow  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401
    from mlflow.models import Model, infer_signature  # noqa: F401

    import extf.tracking.keras_flavor  # noqa: F401


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
