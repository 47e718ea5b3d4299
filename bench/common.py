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
from collections.abc import Callable
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


# ---------------------------------------------------------------------------------------------------- the harness
class Failed(Exception):
    """A side could not be measured (its command failed, the sides did not do the same work...): the figure's row
    says n/a with this message as the reason."""


@dataclass
class Sample:
    """The number read from one run of a side, what to show of it in the detail, and anything a figure's `detail`
    hook needs later (trial durations, hyperparameters...)."""

    value: float
    note: str = ""
    data: dict = field(default_factory=dict)


# One run of a side: called with the repetition index (0, 1, ...; P4 derives its seed from it), returns its number.
Side = Callable[[int], "float | Sample"]


@dataclass
class Figure:
    """A benchmark figure: what to run on each side, how to read a number from a run, and the goal.

    With `b`, the figure is the ratio a / b, measured pair by pair (A B A B ...): each pair gives one ratio and the
    row shows the median and the range of those ratios. Without `b`, the figure is A's number itself (MB, MB/trial)
    over its repetitions. The goal ("<= 1.10", ">= 1.4") carries the direction. See bench/README.md."""

    figure: str                 # "P2"
    measure: str                # what the number is: "extf tune / plain keras-tuner + MLflow, wall time"
    workload: str               # what both sides run: "digits mlp, 12 trials x 10 epochs"
    goal: str                   # "<= 1.10" or ">= 1.4"
    a: Side
    b: Side | None = None       # None: not a ratio
    unit: str = "ratio"         # "ratio", "MB", "MB/trial"...
    detail: Callable[[list[Sample], list[Sample]], str] | None = None  # more text from all samples (A's, B's); may
    #                                                                    raise Failed to void the figure
    min_reps: int = 1           # at least this many repetitions whatever --reps says (P4: its 7 seeds)
    jobs: int = 1               # 2: run two sides at a time (only figures that count epochs or bytes, not seconds)
    setup: Callable[[], None] | None = None  # once before the first run (warm-up, a probe that raises Failed)
    compare: str = "ratio"      # how a pair gives its number: "ratio" (A / B) or "difference" (A - B, P3b's ms)


@dataclass
class Row:
    """One line of the table: a figure's median and range over its repetitions, and the verdict. `value` None means
    "not measured" (the reason is in `detail`)."""

    figure: str            # P1, P2, ...
    name: str              # what was measured
    value: float | None    # the median
    unit: str              # "ratio", "MB", ...
    goal: str              # e.g. "<= 1.10"
    verdict: str           # "yes", "NO", "undecided" (the range straddles the goal), "-" (not measured)
    detail: str = ""
    workload: str = ""
    low: float | None = None
    high: float | None = None
    n: int = 0             # repetitions (pairs for a ratio)

    @property
    def met(self) -> bool | None:
        return {"yes": True, "NO": False}.get(self.verdict)

    def _number(self, x: float | None) -> str:
        if x is None:
            return "n/a"
        return f"{x:.{2 if abs(x) < 100 else 0}f}"

    @property
    def value_text(self) -> str:
        if self.value is None:
            return "n/a"
        return self._number(self.value) + ("" if self.unit == "ratio" else f" {self.unit}")

    @property
    def range_text(self) -> str:
        if self.value is None or self.low is None:
            return "-"
        return f"{self._number(self.low)} to {self._number(self.high)}"  # "-" would read badly with negatives


def check(value: float | None, goal: str) -> bool | None:
    """Whether `value` meets a goal written as '<= 0.25' or '>= 1.4'."""
    if value is None:
        return None
    op, threshold = goal.split()[:2]
    if op not in ("<=", ">="):
        raise ValueError(f"a goal is '<= X' or '>= X'. Received: goal={goal!r}")
    return value <= float(threshold) if op == "<=" else value >= float(threshold)


def verdict(values: list[float], goal: str) -> str:
    """yes: every repetition meets the goal; NO: none does; undecided: the range straddles it."""
    met = [check(v, goal) for v in values]
    if not met:
        return "-"
    return "yes" if all(met) else "NO" if not any(met) else "undecided"


def summarise(figure: str, name: str, values: list[float], goal: str, detail: str = "", unit: str = "ratio",
              workload: str = "") -> Row:
    """A row from the numbers of all repetitions: median, range, verdict."""
    return Row(figure, name, statistics.median(values), unit, goal, verdict(values, goal), detail, workload,
               min(values), max(values), len(values))


def row(figure: str, name: str, value: float | None, goal: str, detail: str = "", unit: str = "ratio",
        workload: str = "") -> Row:
    """A row of one number (a single measurement)."""
    if value is None:
        return na(figure, name, goal, detail, unit, workload)
    return summarise(figure, name, [value], goal, detail, unit, workload)


def na(figure: str, name: str, goal: str, reason: str, unit: str = "ratio", workload: str = "") -> Row:
    return Row(figure, name, None, unit, goal, "-", reason, workload)


def _sample(x: float | Sample) -> Sample:
    return x if isinstance(x, Sample) else Sample(float(x))


def _note(s: Sample) -> str:
    return s.note or f"{s.value:.3g}"


def measure_figure(fig: Figure, reps: int = 3, jobs: int | None = None) -> Row:
    """Run a figure `max(reps, fig.min_reps)` times, alternating its sides (A B A B ...), and summarise it. `jobs`
    caps the runs at a time of a figure that allows several (`--jobs 1` on a machine shared with other work)."""
    n = max(reps, fig.min_reps)
    workers = min(fig.jobs, jobs) if jobs else fig.jobs
    log(f"{fig.figure}: {fig.measure} -- {fig.workload}: {n} {'pairs' if fig.b else 'runs'}")
    try:
        if fig.setup is not None:
            fig.setup()
        calls = [(i, side) for i in range(n) for side in ((fig.a, fig.b) if fig.b else (fig.a,))]

        def call(job):
            i, side = job
            log(f"{fig.figure}: {'A' if side is fig.a else 'B'} {i + 1}/{n}")
            return _sample(side(i))

        samples = parallel([lambda job=job: call(job) for job in calls], workers) if workers > 1 \
            else [call(job) for job in calls]
        a_s = samples[::2] if fig.b else samples
        b_s = samples[1::2] if fig.b else []
        for s in b_s if fig.compare == "ratio" else ():
            if s.value == 0:
                raise Failed(f"side B read 0 (cannot divide by it): {_note(s)}")
        values = [_compare(a.value, b.value, fig.compare) for a, b in zip(a_s, b_s)] if fig.b \
            else [a.value for a in a_s]
        runs = ", ".join(f"{_note(a)} / {_note(b)}" for a, b in zip(a_s, b_s)) if fig.b \
            else ", ".join(_note(a) for a in a_s)
        detail = (f"A / B per pair: {runs}" if fig.b else f"per run: {runs}")
        if fig.detail is not None:
            detail += "; " + fig.detail(a_s, b_s)
    except Failed as e:
        return na(fig.figure, fig.measure, fig.goal, str(e), fig.unit, fig.workload)
    return summarise(fig.figure, fig.measure, values, fig.goal, detail, fig.unit, fig.workload)


def _compare(a: float, b: float, how: str) -> float:
    if how == "ratio":
        return a / b
    if how == "difference":
        return a - b
    raise ValueError(f"Figure.compare is 'ratio' or 'difference'. Received: compare={how!r}")


def measure(figures: list[Figure], reps: int = 3, jobs: int | None = None) -> list[Row]:
    return [measure_figure(f, reps, jobs) for f in figures]


def format_table(rows: list[Row]) -> str:
    head = ("figure", "measure", "workload", "median", "range", "n", "goal", "verdict", "detail")
    body = [(r.figure, r.name, r.workload, r.value_text, r.range_text, str(r.n or "-"), r.goal, r.verdict, r.detail)
            for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line[:-1], widths)) + "  " + line[-1]
             for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(line.rstrip() for line in lines)


def log(msg: str) -> None:
    """Progress on stderr, so the tables on stdout stay clean."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every entry point shares: --quick, --reps."""
    parser.add_argument("--quick", action="store_true", help="smaller workloads: a rough reading, not a verdict")
    parser.add_argument("--reps", type=int, default=3, metavar="N",
                        help="repetitions of each figure: pairs A B for a ratio (default 3; a figure may need more)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="at most N runs at a time in the figures that run two (those counting epochs or bytes)")
    return parser


def script_main(figures, doc: str) -> int:
    """The `main()` of every pNN script: --quick, --reps, measure its figures, print their rows."""
    args = arguments(argparse.ArgumentParser(description=doc.split("\n\n")[0])).parse_args()
    if args.reps < 1:
        raise SystemExit(f"--reps must be at least 1. Received: --reps={args.reps}")
    if args.jobs is not None and args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1. Received: --jobs={args.jobs}")
    print(format_table(measure(figures(quick=args.quick), args.reps, args.jobs)))
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
    line_cpu: list[float] = field(default_factory=list)  # with own_cpu: the process's own CPU seconds at each line

    @property
    def ok(self) -> bool:
        return self.returncode == 0 or self.stopped

    def error(self) -> str:
        """The last meaningful line of the output, for a table cell."""
        text = [ln for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()
                and "absl::InitializeLog" not in ln and "cuda" not in ln.lower()]
        return (text[-1] if text else f"exit code {self.returncode}")[:200]


def run(cmd: list[str], cwd: Path | str = ROOT, extra_env: dict | None = None, timeout: float = 900,
        stop_when=None, rss_every: float | None = None, own_cpu: bool = False) -> Run:
    """Run `cmd`, stream its stdout line by line (timestamped), wall-time it end to end.

    When `stop_when(elapsed, line)` returns True for a line, the process gets SIGTERM (extf ends its MLflow runs as KILLED) and the run counts as ok. `rss_every`: sample the
    resident memory of the process tree every that many seconds, on the same clock as the lines. `own_cpu`: read the
    CPU time of the process itself (not its children: the tracking process, workers) as each line arrives."""
    sampler = RssSampler(rss_every) if rss_every else None
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env(extra_env), stdout=subprocess.PIPE, stderr=err, text=True,
                                bufsize=1)
        if sampler is not None:
            sampler.start(proc.pid, start)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        lines, line_cpu, stopped = [], [], False
        try:
            for line in proc.stdout:
                elapsed = time.perf_counter() - start
                if own_cpu:
                    line_cpu.append(process_cpu(proc.pid))
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
               rss=sampler.samples if sampler is not None else [], cpu=usage.ru_utime + usage.ru_stime,
               line_cpu=line_cpu)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far, its children not included (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def median_seconds(cmd: list[str], repeats: int, cwd: Path | str = ROOT) -> float:
    """Median wall time of `repeats` runs of a quick command (it must succeed)."""
    times = []
    for _ in range(repeats):
        result = run(cmd, cwd=cwd)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.error()}")
        times.append(result.seconds)
    return statistics.median(times)


_warmed = False


def warm_up() -> None:
    """Load TensorFlow, Keras, keras-tuner and MLflow once per bench process, so the first timed process does not pay
    the cold disk cache on its own."""
    global _warmed
    if not _warmed:
        run([PYTHON, "-c", "import keras, keras_tuner, mlflow, sklearn"], timeout=300)
        _warmed = True


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


# ---------------------------------------------------------------------------------------------------- sides
def wall(result: Run) -> Sample:
    """The reader of timed figures: the run's wall time, end to end."""
    return Sample(result.seconds, f"{result.seconds:.{2 if result.seconds < 10 else 1}f} s")


def command_side(cmd: list[str], read: Callable[[Run], float | Sample] = wall, cwd: Path | str = ROOT,
                 **run_kwargs) -> Side:
    """A side that runs `cmd` (in the checkout by default) and reads its number from the finished run."""
    def side(_rep: int) -> float | Sample:
        result = run(cmd, cwd=cwd, **run_kwargs)
        if not result.ok:
            raise Failed(f"{' '.join(cmd[-3:])} failed: {result.error()}")
        return read(result)
    return side


def extf_side(args: list[str], read: Callable[[Run], float | Sample] = wall, store: bool = False,
              **run_kwargs) -> Side:
    """A side that runs `extf <args>` in a fresh throw-away project (with an MLflow store already there if `store`)
    and reads its number from the finished run; `read` can look into the project (`result.root`) before it goes."""
    def side(_rep: int) -> float | Sample:
        with project(store=store) as root:
            result = run_extf(args, root, **run_kwargs)
            if not result.ok:
                raise Failed(f"extf {' '.join(args[:1])} failed: {result.error()}")
            return read(result)
    return side


def trial_lines(result: Run) -> list[tuple[float, str]]:
    """The per-trial progress lines extf prints (`[trial 3/10] ...`, `[worker1] [trial 3/10] ...` from a worker)
    with their arrival times."""
    return [(t, line) for t, line in result.lines if TRIAL_LINE.match(line)]


def per_trial(result: Run) -> tuple[list[float], list[float]]:
    """Wall and own-CPU seconds of each trial but the first: the intervals between consecutive trial lines (each
    holds one whole trial and all it logs). Needs a run with own_cpu."""
    at = [(t, cpu) for (t, line), cpu in zip(result.lines, result.line_cpu) if TRIAL_LINE.match(line)]
    if len(at) < 3:
        raise Failed(f"expected at least 3 trial lines to time trials by. Received: {len(at)}")
    return [b[0] - a[0] for a, b in zip(at, at[1:])], [b[1] - a[1] for a, b in zip(at, at[1:])]


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


def epochs_until(trials: list[dict], objective: str, threshold: float) -> tuple[int, bool, int]:
    """(epochs trained, reached?, trials run) over trials.jsonl rows in order, up to the first FINISHED trial whose
    `objective` is at least `threshold` (P4, P11)."""
    spent = 0
    for i, t in enumerate(trials, 1):
        spent += int(t.get("epochs") or 0)
        if t.get("status") == "FINISHED" and (t.get(objective) or 0) >= threshold:
            return spent, True, i
    return spent, False, len(trials)
