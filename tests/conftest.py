"""Shared fixtures: compose the real conf/ tree with Hydra's compose API, run the CLI in a subprocess; tests that
need a program this machine lacks skip through `needs()`, and the run ends with the list of them and the one
command that installs what they need (`make test-deps`). Tests marked `long` (the longest end-to-end runs) skip
unless pytest is given --long (`make test-long`); the run ends with their list too."""

from __future__ import annotations

import os
import subprocess
import sys
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


IN_PROCESS = False  # see extf_in_process


def extf_in_process(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`extf ARGS` run by extf.cli.main in this process, returned as run_extf returns it (exit code, stdout, stderr).
    For tests whose subject is what a command does, not its process (start-up, exit, signals, the real command's
    output stay run_extf's): TensorFlow and MLflow are imported once per worker instead of once per command (10-15
    CPU-seconds each). The process state a command sets (working directory, environment, signal handlers, logging)
    is put back; usable in fixtures of any scope.

    Off for now (IN_PROCESS): in a full `make test` run, the first in-process TPE study (Optuna) ended with
    "ValueError: I/O operation on closed file" in a context manager's exit and every later test of that xdist worker
    errored in setup (pytest's capture file closed); until that is understood, the command runs as run_extf."""
    if not IN_PROCESS:
        return run_extf(args, cwd=cwd, env=env)
    import contextlib
    import io
    import logging
    import signal

    from extf.cli import main

    root_logger = logging.getLogger()
    saved_env, saved_logging, saved_cwd = dict(os.environ), (root_logger.level, root_logger.handlers[:]), os.getcwd()
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved_hook = sys.unraisablehook
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
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root_logger.setLevel(saved_logging[0])
        root_logger.handlers[:] = saved_logging[1]
        for s, handler in saved_signals.items():
            signal.signal(s, handler)
        sys.unraisablehook = saved_hook
    return subprocess.CompletedProcess(["extf", *args], code, out.getvalue(), err.getvalue())
