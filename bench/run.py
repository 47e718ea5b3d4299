"""`make bench`: run the benchmark figures and print one table of the ratios measured in this run, each beside its
goal and whether it is met. Benchmarks report; they never fail (exit code 0 whatever the figures say).

    python bench/run.py                 # every figure (P1 ... P9), about 15 minutes on 2 idle cores
    python bench/run.py P2 P5           # a subset
    python bench/run.py --quick         # smaller workloads: a rough reading in a few minutes
    make bench ARGS="P3 --quick"

Each figure is a script bench/p<N>_<name>.py with `measure(quick) -> list[Row]`; run one alone with
`python bench/p<N>_<name>.py [--quick]`. EXTF_BENCH_KEEP=1 keeps the throw-away project directories.
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

from common import Row, format_table, na  # noqa: E402


def figures() -> dict[str, str]:
    """{"P1": "p1_cli_startup", ...} in figure order."""
    found = {}
    for path in HERE.glob("p*_*.py"):
        m = re.fullmatch(r"p(\d+)_\w+", path.stem)
        if m:
            found[f"P{int(m.group(1))}"] = path.stem
    return dict(sorted(found.items(), key=lambda kv: int(kv[0][1:])))


def main() -> int:
    available = figures()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="*", metavar="PN", help=f"figures to run ({', '.join(available)}); all "
                                                                  f"by default")
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    args = parser.parse_args()
    chosen = [f.upper() for f in args.figures] or list(available)
    unknown = [f for f in chosen if f not in available]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}. Expected some of: {', '.join(available)}")

    started = time.perf_counter()
    rows: list[Row] = []
    for fig in chosen:
        module_name = available[fig]
        print(f"\n== {fig}: bench/{module_name}.py{' --quick' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(module_name)
            got = module.measure(quick=args.quick)
        except Exception as e:  # report, never fail
            traceback.print_exc()
            got = [na(fig, module_name, "-", f"the benchmark itself failed: {type(e).__name__}: {e}")]
        print(format_table(got), flush=True)
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
        rows += got

    minutes = (time.perf_counter() - started) / 60
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\nextf benchmarks{' (--quick)' if args.quick else ''}: {len(chosen)} figure(s), {len(rows)} row(s) "
          f"measured in this run, "
          f"{minutes:.1f} min, {cores} cores, load average now {load}. Ratios compare runs of this same session; "
          f"they report and never fail.")
    print(format_table(rows))
    missed = [r.figure for r in rows if r.met is False]
    print(f"goals met: {sum(r.met is True for r in rows)}/{len(rows)}"
          + (f"; missed: {', '.join(dict.fromkeys(missed))}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
