"""Many `extf` command lines, each in a process of its own, at the cost of one interpreter start-up.

An `extf` subprocess of a test spends most of its time starting Python and importing extf, Hydra and NumPy before it
reads its command line (about 0.7 of 1.4 CPU-seconds for a config error). `start(rows)` runs one driver process (this
file, as a script) that imports extf's command line and the modules every command needs once, then forks one child
per row: the child takes the row's working directory, environment, command line and standard output and error
(files), and calls `extf.cli.entry()`, the `extf` console script's own entry point, which ends the process with its
exit code. So each row is still a fresh process of its own (its own exit code, file descriptors, signal handlers,
atexit handlers, and nothing left over from another row); what it shares is only modules imported before it started.
Nothing that imports TensorFlow, Keras or MLflow is imported ahead: a row that reaches them imports them itself.

`result(run, row)` waits for one row's process and returns a `subprocess.CompletedProcess`, as `tests.conftest.run_extf` does,
with `.imported`: which of TensorFlow, Keras and MLflow the row had imported when it ended.

`run(args, cwd, env)` is run_extf's counterpart for tests that run one command at a time (a config or data error
whose message is the subject): the rows go to one driver per test process, started at the first call and fed one
row at a time (`--serve`: a JSON row per line on its standard input), which ends with the test process.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
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
    base = _base_env()
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
    done = subprocess.CompletedProcess(["extf", *row.argv], code, out.read_text(errors="replace"),
                                       err.read_text(errors="replace"))
    imported = run.folder / f"{row_id}.imported"
    # which of NEVER_PRELOADED the row imported by its end (None: it ended without its exit handlers, e.g. killed)
    done.imported = set(json.loads(imported.read_text())) if imported.exists() else None
    return done


def stop(run: Run) -> None:
    if run.proc.poll() is None:
        run.proc.kill()
    run.proc.wait()


class _Served:
    """The driver of `run`: started at the first call, fed a row per call, ended at exit (its input closed)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.run: Run | None = None

    def send(self, argv: tuple, cwd: Path, env: dict, timeout: float) -> tuple[Run, Row]:
        with self.lock:
            if self.run is None or self.run.proc.poll() is not None:
                folder = Path(tempfile.mkdtemp(prefix="extf-forked-"))
                log = open(folder / "driver.log", "w")  # noqa: SIM115 - the driver's own output
                proc = subprocess.Popen([sys.executable, __file__, "--serve", str(folder)], stdin=subprocess.PIPE,
                                        stdout=log, stderr=subprocess.STDOUT, text=True, env=_base_env())
                log.close()
                self.run = Run(proc, folder, timeout)
                atexit.register(self.end, self.run)
            row = Row(f"row{next(self.ids)}", tuple(argv), Path(cwd), env)
            line = {"id": row.id, "argv": list(row.argv), "cwd": str(row.cwd), "timeout": timeout,
                    "env": {**_base_env(), "EXTF_ROOT": str(row.cwd), **env}}
            self.run.proc.stdin.write(json.dumps(line) + "\n")
            self.run.proc.stdin.flush()
            return Run(self.run.proc, self.run.folder, timeout), row

    @staticmethod
    def end(run: Run) -> None:
        """No more rows: the driver ends once its running rows have (killed if it has not after a minute); its
        folder of outputs goes."""
        try:
            run.proc.stdin.close()
            run.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            run.proc.kill()
        shutil.rmtree(run.folder, ignore_errors=True)


_SERVED = _Served()


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`extf ARGS` in a process of its own, forked from this test process's driver; as run_extf returns it."""
    started, row = _SERVED.send(tuple(args), cwd, dict(env or {}), timeout)
    return result(started, row)


def _base_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "EXTF_DEBUG"}


# --------------------------------------------------------------------------- the driver (this file as a script)
def _child(row: dict, folder: Path) -> None:
    """In the forked child: become the row's `extf` process. Never returns: entry() ends the process (os._exit,
    or SystemExit and the interpreter's own exit, as in the console script)."""
    os.chdir(row["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # not the driver's: in --serve, the rows to come
    os.environ.clear()
    os.environ.update(row["env"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(folder / f"{row['id']}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    import extf.cli

    imported = folder / f"{row['id']}.imported"  # registered first, so run last of the exit handlers
    atexit.register(lambda: imported.write_text(json.dumps([m for m in NEVER_PRELOADED if m in sys.modules])))
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


def _preload() -> None:
    sys.path[0] = str(Path(sys.executable).parent)  # as in the `extf` console script: its bin/ folder, not tests/
    for name in PRELOAD:
        __import__(name)
    ahead = [m for m in NEVER_PRELOADED if m in sys.modules]
    assert not ahead, f"preloading imported {ahead}: the rows that must not need them could not show it"


def _more_rows(fd: int, pending: bytearray) -> list[dict] | None:
    """The rows sent so far on `fd` (waiting at most POLL for one); None once it is closed and nothing is left."""
    if select.select([fd], [], [], POLL)[0]:
        data = os.read(fd, 1 << 16)
        if not data:
            return None
        pending.extend(data)
    *lines, rest = pending.split(b"\n")
    pending[:] = rest
    return [json.loads(line) for line in lines if line.strip()]


def main(spec_file: str | None, folder: Path | None = None) -> None:
    """The driver: the rows of `spec_file`, or (--serve) the rows that come on standard input, each forked."""
    spec = json.loads(Path(spec_file).read_text()) if spec_file else {"folder": str(folder), "rows": [], "workers": 2}
    folder, todo = Path(spec["folder"]), list(spec["rows"])
    _preload()
    stdin, pending = (sys.stdin.fileno() if spec_file is None else None), bytearray()
    running: dict[int, tuple[str, float]] = {}
    deadline: dict[int, float] = {}
    while todo or running or stdin is not None:
        while todo and len(running) < spec["workers"]:
            row = todo.pop(0)
            pid = _fork(row, folder)
            running[pid] = (row["id"], time.monotonic())
            deadline[pid] = time.monotonic() + row.get("timeout", spec.get("timeout", 600))
        pid, status, usage = os.wait4(-1, os.WNOHANG) if running else (0, 0, None)
        if pid:
            _finish(running, pid, status, usage, folder)
            deadline.pop(pid)
            continue
        for pid in list(running):
            if time.monotonic() > deadline[pid]:
                os.kill(pid, 9)  # reaped above: its code is -9
        if stdin is None:
            time.sleep(POLL)
            continue
        rows = _more_rows(stdin, pending)
        if rows is None:
            stdin = None
        else:
            todo.extend(rows)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        main(None, Path(sys.argv[2]))
    else:
        main(sys.argv[1])
