"""Shared helpers of the benchmark scripts: the result row, the table, timing subprocesses, running `extf` in a
throw-away project directory, sampling the resident memory of a process tree, disk usage.

Benchmarks report; they never fail (a figure that cannot be measured is a row with value None and a reason).
Every subprocess gets the same environment: TensorFlow's C++ logging off and oneDNN off, as `extf` sets for itself,
so a baseline and extf run under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: conf/ and src/ live here
PYTHON = sys.executable
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow",
       "PYTHONUNBUFFERED": "1", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}

TRIAL_LINE = re.compile(r"^(\[[\w.-]+\] )?\[trial \d+/\d+\]")

# the workload of P2, P3 and P5: small enough for a couple of minutes, large enough that training is the bulk
MLP_DIGITS = ["dataset=digits", "model=mlp", "tuner=random", "callbacks=none", "seed=42"]
CNN_DIGITS = ["dataset=digits", "model=cnn", "tuner=random", "callbacks=none", "seed=42"]


# ---------------------------------------------------------------------------------------------------- results
@dataclass
class Row:
    """One figure of the table. `value` None means "not measured" (the reason is in `detail`)."""

    figure: str            # P1, P2, ...
    name: str              # what was measured
    value: float | None
    unit: str              # "ratio", "MB", "x"...
    goal: str              # e.g. "<= 1.10"
    met: bool | None       # None: not measured
    detail: str = ""

    @property
    def value_text(self) -> str:
        if self.value is None:
            return "n/a"
        digits = 2 if abs(self.value) < 100 else 0
        unit = "" if self.unit == "ratio" else f" {self.unit}"
        return f"{self.value:.{digits}f}{unit}"


def check(value: float | None, goal: str) -> bool | None:
    """Whether `value` meets a goal written as '<= 0.25' or '>= 1.4'."""
    if value is None:
        return None
    op, threshold = goal.split()[:2]
    return value <= float(threshold) if op == "<=" else value >= float(threshold)


def row(figure: str, name: str, value: float | None, goal: str, detail: str = "", unit: str = "ratio") -> Row:
    return Row(figure, name, value, unit, goal, check(value, goal), detail)


def na(figure: str, name: str, goal: str, reason: str, unit: str = "ratio") -> Row:
    return Row(figure, name, None, unit, goal, None, reason)


def format_table(rows: list[Row]) -> str:
    head = ("figure", "measure", "value", "goal", "met", "detail")
    body = [(r.figure, r.name, r.value_text, r.goal, {True: "yes", False: "NO", None: "-"}[r.met], r.detail)
            for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(5)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line[:5], widths)) + "  " + line[5] for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(line.rstrip() for line in lines)


def log(msg: str) -> None:
    """Progress on stderr, so the tables on stdout stay clean."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def script_main(measure, doc: str) -> int:
    """The `main()` of every pNN script: --quick, measure, print its rows."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version")
    args = parser.parse_args()
    rows = measure(quick=args.quick)
    print(format_table(rows))
    return 0


# ---------------------------------------------------------------------------------------------------- processes
def env(extra: dict | None = None) -> dict:
    out = {k: v for k, v in os.environ.items() if k not in ("EXTF_DEBUG", "EXTF_ROOT")}
    out.update(ENV)
    out.update(extra or {})
    return out


@dataclass
class Run:
    """A finished subprocess: wall time, exit code, output, and when each stdout line arrived."""

    cmd: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line)
    root: Path | None = None
    stopped: bool = False  # ended early by `stop_when`
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes) with rss_every
    cpu: float = 0.0  # user + system CPU seconds of the process and the children it waited for

    @property
    def ok(self) -> bool:
        return self.returncode == 0 or self.stopped

    def error(self) -> str:
        """The last meaningful line of the output, for a table cell."""
        text = [ln for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()
                and "absl::InitializeLog" not in ln and "cuda" not in ln.lower()]
        return (text[-1] if text else f"exit code {self.returncode}")[:200]


def run(cmd: list[str], cwd: Path | str = ROOT, extra_env: dict | None = None, timeout: float = 900,
        stop_when=None, rss_every: float | None = None) -> Run:
    """Run `cmd`, stream its stdout line by line (timestamped), wall-time it end to end.

    When `stop_when(elapsed, line)` returns True for a line, the process gets SIGTERM (extf ends its MLflow runs as KILLED) and the run counts as ok. `rss_every`: sample the
    resident memory of the process tree every that many seconds, on the same clock as the lines."""
    sampler = RssSampler(rss_every) if rss_every else None
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env(extra_env), stdout=subprocess.PIPE, stderr=err, text=True,
                                bufsize=1)
        if sampler is not None:
            sampler.start(proc.pid, start)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        lines, stopped = [], False
        try:
            for line in proc.stdout:
                elapsed = time.perf_counter() - start
                line = line.rstrip("\n")
                lines.append((elapsed, line))
                if not stopped and stop_when is not None and stop_when(elapsed, line):
                    stopped = True
                    proc.terminate()
            _, status, usage = os.wait4(proc.pid, 0)  # like proc.wait(), with the child's resource usage
            returncode = proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
            if sampler is not None:
                sampler.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    return Run(cmd, seconds, returncode, "\n".join(line for _, line in lines), stderr, lines, stopped=stopped,
               rss=sampler.samples if sampler is not None else [], cpu=usage.ru_utime + usage.ru_stime)


def median_seconds(cmd: list[str], repeats: int, cwd: Path | str = ROOT) -> float:
    """Median wall time of `repeats` runs of a quick command (it must succeed)."""
    times = []
    for _ in range(repeats):
        result = run(cmd, cwd=cwd)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.error()}")
        times.append(result.seconds)
    return statistics.median(times)


def warm_up() -> None:
    """Load TensorFlow, Keras, keras-tuner and MLflow once, so the first timed process does not pay the cold disk
    cache on its own."""
    run([PYTHON, "-c", "import keras, keras_tuner, mlflow, sklearn"], timeout=300)


def extf_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "extf.cli", *args]


@contextmanager
def project(prefix: str = "extf-bench-", store: bool = False):
    """A throw-away project directory (EXTF_ROOT): outputs/ and mlruns/ land in it; removed afterwards unless
    EXTF_BENCH_KEEP=1. `store`: create its MLflow store (mlruns/mlflow.db) first, as a project has after its first
    study (creating the schema of a new store takes seconds, once)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if store:
            (path / "mlruns").mkdir()
            run([PYTHON, "-c", f"from mlflow import MlflowClient; MlflowClient('sqlite:///{path}/mlruns/mlflow.db')"
                               f".search_experiments()"], cwd=path, timeout=300)
        yield path
    finally:
        if os.environ.get("EXTF_BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)
        else:
            log(f"kept {path}")


def run_extf(args: list[str], root: Path, **kwargs) -> Run:
    """`extf <args>` in the project directory `root` (cwd and EXTF_ROOT), as a user runs it."""
    result = run(extf_cmd(*args), cwd=root, extra_env={"EXTF_ROOT": str(root)}, **kwargs)
    result.root = root
    return result


def trial_lines(result: Run) -> list[tuple[float, str]]:
    """The per-trial progress lines extf prints (`[trial 3/10] ...`, `[worker1] [trial 3/10] ...` from a worker)
    with their arrival times."""
    return [(t, line) for t, line in result.lines if TRIAL_LINE.match(line)]


def study_trials(root: Path) -> list[dict]:
    """The trials of the (single) study under `root`, in the order they finished (outputs/studies/**/trials.jsonl;
    the last record of a trial id wins)."""
    files = sorted((root / "outputs" / "studies").rglob("trials.jsonl"))
    rows: dict[str, dict] = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows.pop(rec["trial_id"], None)
            rows[rec["trial_id"]] = rec
    return list(rows.values())


def unknown_key(result: Run, key: str) -> bool:
    """Whether extf refused an override because the config has no such key."""
    text = result.stderr + result.stdout
    leaf = key.rsplit(".", 1)[-1]
    return result.returncode != 0 and leaf in text and any(
        s in text for s in ("not in struct", "Could not override", "Key '", "unknown", "Unknown"))


# ---------------------------------------------------------------------------------------------------- memory, disk
def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _rss_one(pid: int) -> int:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        pass
    except Exception:  # the process ended
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (worker processes count too)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss_one(p)
        todo += _children(p)
    return total


class RssSampler:
    """Samples the resident memory of a process tree every `interval` seconds in a thread: (elapsed, bytes)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int, started: float) -> None:
        def loop():
            while not self._stop.is_set():
                rss = tree_rss(pid)
                if rss:
                    self.samples.append((time.perf_counter() - started, rss))
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def disk_bytes(*paths: Path) -> int:
    """Bytes the files under `paths` occupy on disk (allocated blocks, as `du`), each file counted once."""
    total, seen = 0, set()
    for top in paths:
        if not top.exists():
            continue
        for p in [top, *top.rglob("*")]:
            try:
                st = p.lstat()
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
    return total


def mb(n_bytes: float) -> float:
    return n_bytes / 2**20


def parallel(jobs: list, workers: int = 2) -> list:
    """Run the zero-argument callables `jobs` `workers` at a time (for figures that count epochs or bytes, not
    seconds); results in the order of `jobs`."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))
