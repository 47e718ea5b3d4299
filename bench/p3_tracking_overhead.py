"""P3: the cost of MLflow tracking: `extf tune` with tracking=mlflow (the default) divided by the same study with
tracking=none, timed end to end as subprocesses in fresh project directories. Goal: <= 1.05.

Rows: the project's first study (extf creates the MLflow store: its SQLite schema and migrations, once per
project), a project whose store already exists (created beforehand, untimed), as for every later study, and the
same for a study of 4x the trials, whose ratio shows how the cost amortises. The detail splits the tracking cost
into a fixed part per study and a part per trial (a straight line through the two existing-store studies).
Workload: the trials of P2 (digits, mlp, random, seed 42, callbacks=none, 5 trials x 5 epochs, and 20 x 5;
--quick: 3 x 3 and 6 x 3).

Where the time went (pyinstrument, this machine): a fixed ~2 s per study, nearly all Python imports MLflow needs
(`import mlflow` 0.9 s: its pandas, genai and gateway modules; the SQLAlchemy store and ORM models 0.9 s), then
logging the Keras model (0.5 s: MLflow saved it, loaded it back and predicted the input example); each trial adds a
few store writes (create run, params, metric batches, end). A thread beside TensorFlow's import did not hide the
imports (both are Python work under the GIL: 0.5 s slower than one after the other). Now MLflow runs in a process
of its own started before TensorFlow's import (extf.tracking.process), which hides the imports and the store's
opening on the other core, and the model is logged from its saved .keras file without loading it back (0.14 s).
"""

from __future__ import annotations

import sys

from common import MLP_DIGITS, Row, log, na, project, row, run_extf, script_main, warm_up

GOAL = "<= 1.05"


def measure(quick: bool = False) -> list[Row]:
    small, large, epochs = (3, 6, 3) if quick else (5, 20, 5)
    cases = {"none": ("none", False, small), "new store": ("mlflow", False, small),
             "existing store": ("mlflow", True, small), "none, longer": ("none", False, large),
             "existing store, longer": ("mlflow", True, large)}
    names = {case: f"tracking=mlflow ({case.split(',')[0]}) / tracking=none ({trials} trials x {epochs} epochs)"
             for case, (tracking, _, trials) in cases.items() if tracking == "mlflow"}
    warm_up()
    results = {}
    for case, (tracking, store, trials) in cases.items():
        with project(store=store) as root:
            log(f"P3: extf tune tracking={tracking} ({case}), {trials} trials x {epochs} epochs")
            result = run_extf(["tune", *MLP_DIGITS, f"tracking={tracking}", f"tuner.max_trials={trials}",
                               f"trainer.epochs={epochs}"], root)
            if result.returncode != 0:
                return [na("P3", name, GOAL, f"extf tune tracking={tracking} failed: {result.error()}")
                        for name in names.values()]
            results[case] = result
    extra = {n: results[c].seconds - results[b].seconds
             for n, c, b in ((small, "existing store", "none"), (large, "existing store, longer", "none, longer"))}
    per_trial = (extra[large] - extra[small]) / (large - small)
    rows = []
    for case, name in names.items():
        base = results["none, longer" if case.endswith("longer") else "none"]
        detail = (f"wall: {results[case].seconds:.1f} s vs {base.seconds:.1f} s; CPU: {results[case].cpu:.1f} s vs "
                  f"{base.cpu:.1f} s (ratio {results[case].cpu / base.cpu:.2f})")
        if case.endswith("longer"):
            detail += (f"; tracking cost ~ {extra[small] - small * per_trial:.1f} s per study + "
                       f"{per_trial * 1000:.0f} ms per trial (from the two existing-store studies; noisy)")
        rows.append(row("P3", name, results[case].seconds / base.seconds, GOAL, detail))
    return rows


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
