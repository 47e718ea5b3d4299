"""`make bench`: run the benchmark figures and print one table: each figure's median and range over its repetitions
(the two sides of a ratio alternate, A B A B ...), its goal and the verdict (yes / NO / undecided). Benchmarks
report; they never fail (exit code 0 whatever the figures say).

    python bench/run.py                 # every figure, 3 pairs each
    python bench/run.py P2 P5 --reps 5  # a subset, 5 pairs each
    python bench/run.py --quick         # smaller workloads: a rough reading, not a verdict
    make bench ARGS="P3 --quick --reps 1"

Each script bench/p<N>_<name>.py defines `figures(quick) -> list[Figure]` (see bench/README.md); run one alone with
`python bench/p<N>_<name>.py [--quick] [--reps N]`. EXTF_BENCH_KEEP=1 keeps the throw-away project directories.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Row, arguments, format_table, measure, na  # noqa: E402


def figures() -> dict[str, str]:
    """{"P1": "p1_cli_startup", "P3b": "p3b_tracking_per_trial", ...} in figure order."""
    found = {}
    for path in HERE.glob("p*_*.py"):
        m = re.fullmatch(r"p(\d+)([a-z]?)_\w+", path.stem)
        if m:
            found[int(m.group(1)), m.group(2)] = path.stem
    return {f"P{n}{letter}": stem for (n, letter), stem in sorted(found.items())}


def main() -> int:
    available = figures()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="*", metavar="PN", help=f"figures to run ({', '.join(available)}); all "
                                                                  f"by default")
    args = arguments(parser).parse_args()
    if args.reps < 1:
        parser.error(f"--reps must be at least 1. Received: --reps={args.reps}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1. Received: --jobs={args.jobs}")
    by_name = {name.upper(): name for name in available}  # P3b may be asked for as p3b or P3B
    asked = [f.upper().rstrip("'") for f in args.figures]  # P2' is in P2
    chosen = list(dict.fromkeys(by_name.get(f, f) for f in asked)) or list(available)
    unknown = [f for f in chosen if f not in available]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}. Expected some of: {', '.join(available)}")

    started = time.perf_counter()
    rows: list[Row] = []
    for fig in chosen:
        module_name = available[fig]
        print(f"\n== {fig}: bench/{module_name}.py{' --quick' if args.quick else ''} --reps {args.reps}", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            got = measure(module.figures(quick=args.quick), args.reps, args.jobs)
        except Exception as e:  # report, never fail
            traceback.print_exc()
            got = [na(fig, module_name, "-", f"the benchmark itself failed: {type(e).__name__}: {e}")]
        print(format_table(got), flush=True)
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
        rows += got

    minutes = (time.perf_counter() - started) / 60
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\nextf benchmarks{' (--quick)' if args.quick else ''}: {len(chosen)} script(s), {len(rows)} row(s) "
          f"measured in this run, --reps {args.reps}, {minutes:.1f} min, {cores} cores, load average now {load}. "
          f"Median and range over the repetitions (ratios pair by pair, sides alternating); verdict yes: every "
          f"repetition meets the goal, NO: none does, undecided: the range straddles it. Benchmarks report and never "
          f"fail.")
    print(format_table(rows))
    counts = {v: [r.figure for r in rows if r.verdict == v] for v in ("yes", "NO", "undecided", "-")}
    print("verdicts: " + ", ".join(f"{v} {len(f)}" + (f" ({', '.join(dict.fromkeys(f))})" if f and v != "yes" else "")
                                   for v, f in counts.items() if f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
