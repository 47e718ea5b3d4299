"""P3: the cost of MLflow tracking: `extf tune` with tracking=mlflow (the default) divided by the same study with
tracking=none, pair by pair, timed end to end as subprocesses in fresh project directories. Goal: <= 1.03 (issue
15; the first feature set had 1.05).

Rows: the project's first study (extf creates the MLflow store: since 2026-12-02 a copy of the empty store that
the machine's first study made in ~/.cache/extf, instead of MLflow's schema migrations, once per project), a project
whose store already exists (created beforehand, untimed), as for every later study, and the
same for a study of 4x the trials, whose ratio shows how the cost amortises. Workload: the trials of P2's quick
size (digits, mlp, random, seed 42, callbacks=none, 5 trials x 5 epochs, and 20 x 5; --quick: 3 x 3 and 6 x 3).
The detail gives the CPU ratio (user + system of the process tree) beside the wall ratio.

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

from common import MLP_DIGITS, Figure, Sample, extf_side, script_main, warm_up

GOAL = "<= 1.03"


def timed(result) -> Sample:
    return Sample(result.seconds, f"{result.seconds:.1f} s", {"cpu": result.cpu})


def cpu_ratios(a: list[Sample], b: list[Sample]) -> str:
    return "CPU ratio per pair " + ", ".join(f"{x.data['cpu'] / y.data['cpu']:.2f}" for x, y in zip(a, b))


def figures(quick: bool = False) -> list[Figure]:
    small, large, epochs = (3, 6, 3) if quick else (5, 20, 5)
    figs = []
    for case, store, trials in (("new store", False, small), ("existing store", True, small),
                                ("existing store", True, large)):
        args = ["tune", *MLP_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"]
        figs.append(Figure("P3", f"tracking=mlflow ({case}) / tracking=none, wall time",
                           f"digits mlp, random search, {trials} trials x {epochs} epochs, callbacks=none", GOAL,
                           a=extf_side([*args, "tracking=mlflow"], read=timed, store=store),
                           b=extf_side([*args, "tracking=none"], read=timed),
                           detail=cpu_ratios, setup=warm_up))
    return figs


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
