"""P2: the cost of extf around keras-tuner: `extf tune` with N trials divided by a plain keras-tuner + MLflow script
doing the same trials (bench/plain_keras_tuner.py), both timed end to end as subprocesses. Goal: <= 1.10.

Workload: digits, mlp with its search space, random search, seed 42, callbacks=none (every trial trains all its
epochs), 5 trials x 5 epochs (--quick: 3 x 3). The plain script draws the same trials (same space, order and seed)
and trains the same epochs on the same split; both log a parent run and one nested run per trial with per-epoch
metrics to a SQLite MLflow store and evaluate the best model once on the test split. extf does more on top (plots,
the logged MLflow model, requirements freeze, provenance): that is part of what the ratio measures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (
    MLP_DIGITS,
    PYTHON,
    Row,
    log,
    na,
    project,
    row,
    run,
    run_extf,
    script_main,
    trial_lines,
    warm_up,
)

GOAL = "<= 1.10"
PLAIN = Path(__file__).resolve().parent / "plain_keras_tuner.py"


def measure(quick: bool = False) -> list[Row]:
    trials, epochs = (3, 3) if quick else (5, 5)
    name = f"extf tune / plain keras-tuner ({trials} trials x {epochs} epochs)"
    warm_up()
    with project() as plain_root, project() as extf_root:
        log(f"P2: plain keras-tuner + MLflow, {trials} trials x {epochs} epochs")
        plain = run([PYTHON, str(PLAIN), "--root", str(plain_root), "--trials", str(trials), "--epochs",
                     str(epochs), "--seed", "42"], cwd=plain_root)
        if plain.returncode != 0:
            return [na("P2", name, GOAL, f"the plain script failed: {plain.error()}")]
        log(f"P2: extf tune, {trials} trials x {epochs} epochs")
        extf = run_extf(["tune", *MLP_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"], extf_root)
        if extf.returncode != 0:
            return [na("P2", name, GOAL, f"extf tune failed: {extf.error()}")]
    lines = trial_lines(extf)
    first = f", first trial line at {lines[0][0]:.1f} s, last at {lines[-1][0]:.1f} s" if lines else ""
    return [row("P2", name, extf.seconds / plain.seconds, GOAL,
                f"wall: extf {extf.seconds:.1f} s vs plain {plain.seconds:.1f} s{first}; CPU: extf {extf.cpu:.1f} s "
                f"vs plain {plain.cpu:.1f} s (ratio {extf.cpu / plain.cpu:.2f})")]


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
