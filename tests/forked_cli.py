"""Many `extf` command lines, each in a process of its own, at the cost of one interpreter start-up.

An `extf` subprocess of a test spends most of its time starting Python and importing extf, Hydra and NumPy before it
reads its command line (about 0.7 of 1.4 CPU-seconds for a config error). `start(rows)` runs one driver process (this
file, as a script) that imports extf's command line and the modules every command needs once, then forks one child
per row: the child takes the row's working directory, environment, command line and standard output and error
(files), and calls `extf.cli.entry()`, the `extf` console script's own entry point, which ends the process with its
exit code. So each row is still a fresh process of its own (its own exit code, file descriptors, signal handlers,
atexit handlers, and nothing left over from another row); what it shares is only modules imported before it started.
Nothing that imports TensorFlow, Keras or MLflow is imported ahead: a row that reaches them imports them itself.

`result(run, row)` waits for one row's process and returns a `subprocess.CompletedProcess`, as `tests.conftest.run_extf` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Imported by the driver before it forks: extf's command line, what every config-reading command imports next, and
# the libraries of the built-in datasets' loaders (scikit-learn's datasets: 1-3 CPU-s; pandas for tables)
PRELOAD = ("extf.cli", "extf.commands.hydra_app", "extf.tuning.study", "extf.data.datasets", "hydra",
           "hydra._internal.utils", "hydra._internal.hydra", "hydra._internal.config_loader_impl", "omegaconf",
           "sklearn.datasets", "sklearn.model_selection", "extf.data.tables")
NEVER_PRELOADED = ("tensorflow", "keras", "mlflow")  # what a row that reaches it must import itself
POLL = 0.02


@dataclass(frozen=True)
class Row:
    id: str
    argv: tuple
    cwd: Path
    env: dict  # the environment variables the row sets, on top of run_extf's (EXTF_ROOT=cwd, no EXTF_DEBUG)


@dataclass
class Run:
    """A started driver: its process and the folder its rows' outputs and exit codes go to."""
    proc: subprocess.Popen
    folder: Path
    timeout: float


def start(rows: list[Row], folder: Path, workers: int = 2, timeout: float = 600) -> Run:
    """Start the driver on `rows` (at most `workers` of them running at once); outputs under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k != "EXTF_DEBUG"}
    spec = {"workers": workers, "timeout": timeout, "folder": str(folder),
            "rows": [{"id": r.id, "argv": list(r.argv), "cwd": str(r.cwd),
                      "env": {**base, "EXTF_ROOT": str(r.cwd), **r.env}} for r in rows]}
    (folder / "rows.json").write_text(json.dumps(spec))
    log = open(folder / "driver.log", "w")  # noqa: SIM115 - the driver's own output, read when it failed
    proc = subprocess.Popen([sys.executable, __file__, str(folder / "rows.json")], env=base, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    return Run(proc, folder, timeout * max(1, len(rows)))


def result(run: Run, row: Row) -> subprocess.CompletedProcess:
    """The row's exit code, standard output and error, once its process has ended."""
    row_id = row.id
    code_file = run.folder / f"{row_id}.code"
    deadline = time.monotonic() + run.timeout
    while not code_file.exists():
        if run.proc.poll() is not None and not code_file.exists():
            log = (run.folder / "driver.log").read_text()
            raise AssertionError(f"the driver ended ({run.proc.returncode}) without a result for {row_id}:\n{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no result for {row_id} after {run.timeout} s")
        time.sleep(POLL)
    code = int(code_file.read_text())
    out, err = (run.folder / f"{row_id}.stdout", run.folder / f"{row_id}.stderr")
    return subprocess.CompletedProcess(["extf", *row.argv], code, out.read_text(errors="replace"),
                                       err.read_text(errors="replace"))


def stop(run: Run) -> None:
    if run.proc.poll() is None:
        run.proc.kill()
    run.proc.wait()


# --------------------------------------------------------------------------- the driver (this file as a script)
def _child(row: dict, folder: Path) -> None:
    """In the forked child: become the row's `extf` process. Never returns: entry() ends the process (os._exit,
    or SystemExit and the interpreter's own exit, as in the console script)."""
    os.chdir(row["cwd"])
    os.environ.clear()
    os.environ.update(row["env"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(folder / f"{row['id']}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    import extf.cli

    sys.argv = [extf.cli.__file__, *row["argv"]]
    extf.cli.entry()
    raise AssertionError("extf.cli.entry() returned")  # it ends the process itself


def _fork(row: dict, folder: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(row, folder)
    return pid


def _finish(pid_rows: dict, pid: int, status: int, usage, folder: Path) -> None:
    row_id, started = pid_rows.pop(pid)
    code = os.waitstatus_to_exitcode(status)
    (folder / f"{row_id}.code.tmp").write_text(str(code))
    os.replace(folder / f"{row_id}.code.tmp", folder / f"{row_id}.code")  # whole, or not there
    print(f"{row_id}: exit {code}, {time.monotonic() - started:.2f} s, {usage.ru_utime + usage.ru_stime:.2f} CPU-s",
          flush=True)  # driver.log: what each row cost


def main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    folder, todo = Path(spec["folder"]), list(spec["rows"])
    sys.path[0] = str(Path(sys.executable).parent)  # as in the `extf` console script: its bin/ folder, not tests/
    for name in PRELOAD:
        __import__(name)
    ahead = [m for m in NEVER_PRELOADED if m in sys.modules]
    assert not ahead, f"preloading imported {ahead}: the rows that must not need them could not show it"
    running: dict[int, tuple[str, float]] = {}
    while todo or running:
        while todo and len(running) < spec["workers"]:
            row = todo.pop(0)
            running[_fork(row, folder)] = (row["id"], time.monotonic())
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid:
            _finish(running, pid, status, usage, folder)
            continue
        for pid, (_, started) in list(running.items()):
            if time.monotonic() - started > spec["timeout"]:
                os.kill(pid, 9)  # reaped above: its code is -9
        time.sleep(POLL)


if __name__ == "__main__":
    main(sys.argv[1])
