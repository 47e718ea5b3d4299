"""Shared fixtures: compose the real conf/ tree with Hydra's compose API, run the CLI in a subprocess; tests that
need a program this machine lacks skip through `needs()`, and the run ends with the list of them and the one
command that installs what they need (`make test-deps`). Tests marked `long` (the longest end-to-end runs) skip
unless pytest is given --long (`make test-long`); the run ends with their list too."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "src" / "extf" / "conf"  # extf's base config tree (package data)
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# The programs some tests drive for real, by the Debian package `make test-deps` installs them from.
DEBIAN_PACKAGES = {"Chromium": "chromium", "PostgreSQL": "postgresql", "Graphviz dot": "graphviz", "zsh": "zsh",
                   "bash": "bash"}
NOT_ON_THIS_MACHINE = "not on this machine: "  # how a skip reason from needs() starts (the closing block finds it)
LONG_RUN = "long end-to-end run: "  # how the skip reason of a `long` test without --long starts


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", help="run the tests marked long too (make test-long)")


def pytest_collection_modifyitems(config, items):
    """Without --long, a `long` test skips (it is listed at the end of the run), never silently deselected."""
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason=f"{LONG_RUN}`make test-long` runs it (.ci/run runs make test, then make test-long)")
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(skip)


def needs(what: str, require_env: str | None = None, hint: str = "") -> None:
    """Skip the calling test (or fixture): `what` (a key of DEBIAN_PACKAGES) is missing here. When `require_env` is
    set in the environment (CI sets EXTF_REQUIRE_BROWSER / EXTF_REQUIRE_SERVER), fail instead."""
    reason = f"{NOT_ON_THIS_MACHINE}{what} (Debian package {DEBIAN_PACKAGES[what]}){': ' + hint if hint else ''}"
    if require_env and os.environ.get(require_env, "") not in ("", "0"):
        pytest.fail(f"{require_env} is set but {reason}")
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The last block of the run (after pytest's short summary): every test skipped because this machine lacks a
    program, grouped by program, and the command that installs them all."""
    yield
    missing: dict[str, list[str]] = {}
    long_runs: list[str] = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(NOT_ON_THIS_MACHINE):
            what = reason[len(NOT_ON_THIS_MACHINE):].split(" (", 1)[0]
            missing.setdefault(what, []).append(report.nodeid)
        elif reason.startswith(LONG_RUN):
            long_runs.append(report.nodeid)
    if long_runs:
        terminalreporter.section(f"NOT RUN by this command: {len(long_runs)} long end-to-end test(s)", sep="=",
                                 yellow=True, bold=True)
        for nodeid in sorted(long_runs):
            terminalreporter.write_line(f"    {nodeid}")
        terminalreporter.write_line("Run them with `make test-long` (pytest --long -m long); .ci/run runs `make test`, "
                                    "then `make test-long`.", yellow=True, bold=True)
    if not missing:
        return
    n = sum(len(ids) for ids in missing.values())
    terminalreporter.section(f"NOT TESTED on this machine: {n} test(s)", sep="=", yellow=True, bold=True)
    for what, ids in missing.items():
        terminalreporter.write_line(f"{what} missing (Debian package {DEBIAN_PACKAGES.get(what, '?')}): "
                                    f"{len(ids)} test(s)")
        for nodeid in ids:
            terminalreporter.write_line(f"    {nodeid}")
    terminalreporter.write_line("Install them all with `make test-deps` (apt-get, with sudo when not root), then "
                                "run `make test` again.", yellow=True, bold=True)


def compose(overrides: list[str] | None = None, output_dir: str | Path = "/tmp/extf-test-out"):
    """The config `extf` would see for these overrides (paths.output_dir pinned, no Hydra run needed)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("config", overrides=[*(overrides or []), f"paths.output_dir={output_dir}"])


@pytest.fixture
def make_cfg(tmp_path):
    """compose + validate for a command, with mlruns/ and outputs under tmp_path. The same overrides are composed
    once per test (Hydra's compose is most of the cost; `prepare` copies the composed config, never changes it)."""
    composed: dict[tuple, object] = {}

    def _make(overrides=None, command="train"):
        from extf.commands.composed import prepare

        key = tuple(overrides or [])
        if key not in composed:
            composed[key] = compose([f"paths.root_dir={tmp_path}", *key], output_dir=tmp_path / "out")
        return prepare(command, composed[key])

    return _make


def run_extf(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed `extf` command as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k != "EXTF_DEBUG"}
    full_env.update({"EXTF_ROOT": str(cwd), **(env or {})})
    return subprocess.run([sys.executable, "-m", "extf.cli", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """One clear message: non-zero exit, no traceback, every needle in stderr."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out}"


def running_runs(mlruns: Path) -> list:
    """Runs left RUNNING in a project's MLflow store (there must never be any after a command ends)."""
    db = mlruns / "mlflow.db"
    if not db.exists():
        return []
    import sqlite3

    with sqlite3.connect(db) as con:
        return con.execute("select run_uuid, name from runs where status = 'RUNNING'").fetchall()


IN_PROCESS = True  # False: extf_in_process runs the real command (run_extf), e.g. to compare


def extf_in_process(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`extf ARGS` run by extf.cli.main in this process, returned as run_extf returns it (exit code, stdout, stderr).
    For tests whose subject is what a command does, not its process (start-up, exit, signals, the real command's
    output stay run_extf's): TensorFlow and MLflow are imported once per worker instead of once per command (10-15
    CPU-seconds each). What a command leaves in the process is put back (`_ProcessState`): working directory,
    environment, sys.argv and sys.path, signal handlers and hooks, warnings filters, logging (levels, handlers, and
    every handler's stream that pointed at the command's or pytest's captured stdout/stderr), Hydra's singletons,
    Keras' session, op determinism, MLflow's active run and tracking URI, the random generators, the project's
    modules; usable in fixtures of any scope. It fails the test when the command leaves a process of its own
    running (the study's tracking process or a worker never ended)."""
    if not IN_PROCESS:
        return run_extf(args, cwd=cwd, env=env)
    import io

    from extf.cli import main

    state, children = _ProcessState(), _children()
    out, err = io.StringIO(), io.StringIO()
    os.chdir(cwd)
    os.environ.pop("EXTF_DEBUG", None)
    os.environ.update({"EXTF_ROOT": str(cwd), **(env or {})})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
    finally:
        state.restore(cwd, swapped=(out, err))
    _no_process_left(args, before=children)
    return subprocess.CompletedProcess(["extf", *args], code, out.getvalue(), err.getvalue())


class _CurrentStream:
    """sys.stdout or sys.stderr as they are when written to: the stream of a logging handler that a library made
    while a stream was swapped (pytest's capture, an in-process command's StringIO). Never closed by a handler's
    close() (absl's closes its stream unless it is sys.stderr: with pytest's capture file, that ended every later
    test of the worker in "I/O operation on closed file")."""

    def __init__(self, name: str):
        self.name = name

    def write(self, text: str) -> int:
        return getattr(sys, self.name).write(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            getattr(sys, self.name).flush()

    def close(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


_CURRENT = {"stdout": _CurrentStream("stdout"), "stderr": _CurrentStream("stderr")}


def _all_handlers() -> list:
    """Every logging handler alive: logging's own list and each logger's (absl's wraps another one)."""
    import logging

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    found = [ref() for ref in list(logging._handlerList)] + [h for lg in loggers for h in lg.handlers]
    found += [getattr(h, "_current_handler", None) for h in found]
    return list({id(h): h for h in found if h is not None}.values())


def _retarget_streams(swapped: tuple = ()) -> None:
    """Point every handler that writes to a swapped stream (the current sys.stdout/stderr when they are not the
    real ones, an in-process command's StringIO, a closed stream) at _CurrentStream instead."""
    import logging

    real = (sys.__stdout__, sys.__stderr__)
    for handler in _all_handlers():
        stream = getattr(handler, "stream", None)
        if (isinstance(handler, logging.FileHandler) or isinstance(getattr(type(handler), "stream", None), property)
                or stream is None or isinstance(stream, _CurrentStream) or any(stream is r for r in real)):
            continue
        name = "stdout" if stream is sys.stdout or stream is (swapped[0] if swapped else None) else "stderr"
        if (stream is sys.stdout or stream is sys.stderr or any(stream is s for s in swapped)
                or getattr(stream, "closed", False)):
            handler.acquire()
            try:
                handler.stream = _CURRENT[name]
            finally:
                handler.release()


class _ProcessState:
    """What an in-process command may change in this process, saved before it runs and put back after."""

    def __init__(self):
        import logging
        import random
        import signal
        import warnings

        _retarget_streams()  # a library's handler on pytest's capture file: the command's logging could close it
        self.cwd, self.environ, self.argv, self.path = os.getcwd(), dict(os.environ), sys.argv[:], sys.path[:]
        self.modules = set(sys.modules)
        self.signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        self.hooks = (sys.unraisablehook, sys.excepthook, threading.excepthook)
        self.warnings = (warnings.filters[:], warnings.showwarning)
        self.loggers = {name: (lg.level, lg.handlers[:], lg.propagate, lg.disabled)
                        for name, lg in [("", logging.getLogger()), *logging.Logger.manager.loggerDict.items()]
                        if isinstance(lg, logging.Logger)}
        self.logging_disabled = logging.root.manager.disable
        self.random = random.getstate()
        self.numpy_random = sys.modules["numpy"].random.get_state() if "numpy" in sys.modules else None
        self.determinism = _op_determinism()
        self.tracking_uri = _mlflow_tracking_uri()

    def restore(self, cwd: Path, swapped: tuple) -> None:
        import random
        import signal
        import warnings

        os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.environ)
        sys.argv[:], sys.path[:] = self.argv, self.path
        for s, handler in self.signals.items():
            signal.signal(s, handler)
        sys.unraisablehook, sys.excepthook, threading.excepthook = self.hooks
        warnings.filters[:], warnings.showwarning = self.warnings
        warnings._filters_mutated()
        self._restore_logging(swapped)
        random.setstate(self.random)
        if self.numpy_random is not None:
            sys.modules["numpy"].random.set_state(self.numpy_random)
        self._restore_libraries()
        self._forget_project_modules(cwd)

    def _restore_logging(self, swapped: tuple) -> None:
        """The root logger gets back its level and handlers (Hydra's job logging replaced them with its own), every
        other logger its level and flags; log files the command opened are closed. A handler a library made during
        the command stays (optuna makes it once per process), writing to sys.stdout/stderr as they are when it
        writes, never into the finished command's StringIO."""
        import logging

        for name, (level, handlers, propagate, disabled) in self.loggers.items():
            logger = logging.getLogger(name or None)
            for handler in logger.handlers[:]:
                if handler not in handlers and (not name or isinstance(handler, logging.FileHandler)):
                    logger.removeHandler(handler)
                    if isinstance(handler, logging.FileHandler):
                        handler.close()
            logger.setLevel(level)
            logger.disabled = disabled
            if not name:
                logger.handlers[:], logger.propagate = handlers, propagate
        logging.disable(self.logging_disabled)
        _retarget_streams(swapped)

    def _restore_libraries(self) -> None:
        """Hydra's singletons (its config of the last job), Keras' session, TensorFlow's op determinism, MLflow's
        run stack (a process's exit ends an active run: MLflow's atexit) and tracking URI, extf's noted interrupt."""
        from extf import errors

        errors._interrupt.clear()
        if "hydra" in sys.modules:
            from hydra.core.global_hydra import GlobalHydra
            from hydra.core.hydra_config import HydraConfig

            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None
        if "keras" in sys.modules:
            sys.modules["keras"].backend.clear_session()
        if "tensorflow" in sys.modules and _op_determinism() and not self.determinism:
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
        if "mlflow" in sys.modules:
            import mlflow
            from mlflow.tracking._tracking_service import utils as tracking_utils

            while mlflow.active_run() is not None:
                mlflow.end_run()
            tracking_utils._tracking_uri = self.tracking_uri

    def _forget_project_modules(self, cwd: Path) -> None:
        """Modules the command imported from the user's project (its working directory): the next test's project
        may have a package of the same name."""
        roots = tuple({str(Path(cwd)), str(Path(cwd).resolve())})
        for name in set(sys.modules) - self.modules:
            file = getattr(sys.modules.get(name), "__file__", None) or ""
            if file.startswith(roots):
                del sys.modules[name]


def _op_determinism() -> bool:
    if "tensorflow" not in sys.modules:
        return False
    from tensorflow.python.framework import config as tf_config

    return tf_config.is_op_determinism_enabled()


def _mlflow_tracking_uri():
    if "mlflow" not in sys.modules:
        return None
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri


def _no_process_left(args: list[str], before: list[str], grace: float = 15.0) -> None:
    """Fail when the command left a child process of this one running (a real `extf` would leave it orphaned)."""
    import time

    deadline = time.monotonic() + grace
    while True:
        children = [c for c in _children() if c not in before]
        if not children or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if children:
        pytest.fail(f"`extf {' '.join(args)}` (in process) left its processes running: {children}")


def _children() -> list[str]:
    """This process's live children (Linux /proc), as `pid command`."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in task.read_text().split():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if stat.rsplit(")", 1)[-1].split()[0] != "Z":  # a zombie has ended (its parent has not reaped it yet)
                found.append(f"{pid} {cmd.strip()}")
    return found


def trial_rows(root: Path) -> list[dict]:
    """The rows of the one study's trials.jsonl under the project `root` (every row: a trial run again has two)."""
    import json

    (rows,) = list((root / "outputs" / "studies").glob("*/trials.jsonl"))
    return [json.loads(line) for line in rows.read_text().splitlines()]
