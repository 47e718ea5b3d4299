"""P3: the cost of MLflow tracking: `extf tune` with tracking=mlflow (the default) divided by the same study with
tracking=none, timed end to end as subprocesses in fresh project directories. Goal: <= 1.05.

Two rows: the project's first study (extf creates the MLflow store: its SQLite schema and migrations take seconds,
once per project) and a project whose store already exists (created beforehand, untimed), as for every later study.
Workload: the trials of P2 (digits, mlp, random, seed 42, callbacks=none, 5 trials x 5 epochs; --quick: 3 x 3).
"""

from __future__ import annotations

import sys

from common import MLP_DIGITS, Row, log, na, project, row, run_extf, script_main, warm_up

GOAL = "<= 1.05"


def measure(quick: bool = False) -> list[Row]:
    trials, epochs = (3, 3) if quick else (5, 5)
    cases = {"none": ("none", False), "new store": ("mlflow", False), "existing store": ("mlflow", True)}
    names = {case: f"tracking=mlflow ({case}) / tracking=none ({trials} trials x {epochs} epochs)"
             for case in ("new store", "existing store")}
    warm_up()
    results = {}
    for case, (tracking, store) in cases.items():
        with project(store=store) as root:
            log(f"P3: extf tune tracking={tracking} ({case}), {trials} trials x {epochs} epochs")
            result = run_extf(["tune", *MLP_DIGITS, f"tracking={tracking}", f"tuner.max_trials={trials}",
                               f"trainer.epochs={epochs}"], root)
            if result.returncode != 0:
                return [na("P3", name, GOAL, f"extf tune tracking={tracking} failed: {result.error()}")
                        for name in names.values()]
            results[case] = result
    none = results["none"]
    return [row("P3", names[case], results[case].seconds / none.seconds, GOAL,
                f"wall: {results[case].seconds:.1f} s vs {none.seconds:.1f} s; CPU: {results[case].cpu:.1f} s vs "
                f"{none.cpu:.1f} s (ratio {results[case].cpu / none.cpu:.2f})")
            for case in names]


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
