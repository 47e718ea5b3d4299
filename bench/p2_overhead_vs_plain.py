"""P2 and P2': the cost of extf around the training it runs, `extf tune` timed end to end as a subprocess and
divided, pair by pair, by

  P2   a plain keras-tuner + MLflow script doing the same trials (bench/plain_keras_tuner.py). Goal: <= 1.10.
  P2'  a bare `model.fit` loop over the same models, no tuner, no tracking (bench/plain_fit_loop.py): the physical
       limit of the search. Goal: <= 1.05.

Workload: digits, mlp with its search space, random search, seed 42, callbacks=none (every trial trains all its
epochs), 12 trials x 10 epochs: about 40 s of search per side on 2 idle cores (5 x 5 took 9 s), so that extf's
fixed costs (start-up, the final test, plots, the logged model) weigh what they weigh in a real study and not more
(--quick: 3 x 3, a smoke test only). The plain script declares the same space in the same order with the same seed, so keras-tuner
draws the same trials; the figure checks it: each pair's two sides must have trained the same hyperparameters,
trial by trial, or the row is n/a. The bare loop trains exactly the trials extf trained in the same pair.
Both plain sides log or evaluate less than extf (plots, the logged MLflow model, requirements, provenance): that
is part of what the ratios measure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import (
    MLP_DIGITS,
    PYTHON,
    Failed,
    Figure,
    Sample,
    command_side,
    extf_side,
    project,
    run,
    script_main,
    study_trials,
    trial_lines,
    warm_up,
)

from extf.tuning.seeds import derived_seed  # extf's oracle seed: the plain side draws the same trials with it

HERE = Path(__file__).resolve().parent
PLAIN = HERE / "plain_keras_tuner.py"
BARE = HERE / "plain_fit_loop.py"
SPACE = ("model.num_layers", "model.units", "model.units_1", "model.units_2", "model.activation", "model.dropout",
         "model.batch_norm", "optimizer.learning_rate")


def active(values: dict) -> dict:
    """The hyperparameters a trial trained (conditional units only where their layer exists), floats rounded so
    that a JSON round trip compares equal."""
    n = values["model.num_layers"]
    out = {k: values[k] for k in SPACE if k in values and not (k == "model.units_1" and n < 2)
           and not (k == "model.units_2" and n < 3)}
    return {k: round(v, 10) if isinstance(v, float) else v for k, v in out.items()}


def read_extf(result) -> Sample:
    trials = sorted(study_trials(result.root), key=lambda t: str(t["trial_id"]))
    lines = trial_lines(result)
    search = lines[-1][0] - lines[0][0] if len(lines) > 1 else 0.0
    return Sample(result.seconds, f"{result.seconds:.1f} s",
                  {"hps": [active(t) for t in trials], "search": search, "cpu": result.cpu})


def same_trials(a: list[Sample], b: list[Sample]) -> str:
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x.data["hps"] != y.data["hps"]:
            diff = next((j, p, q) for j, (p, q) in enumerate(zip(x.data["hps"], y.data["hps"])) if p != q) \
                if len(x.data["hps"]) == len(y.data["hps"]) else (None, len(x.data["hps"]), len(y.data["hps"]))
            raise Failed(f"pair {i}: the two sides trained different hyperparameters (trial, extf, other): {diff}")
    search = ", ".join(f"{s.data['search']:.0f}" for s in a)
    cpu = ", ".join(f"{x.data['cpu'] / y.data['cpu']:.2f}" for x, y in zip(a, b))
    return (f"same {len(a[0].data['hps'])} trials on both sides in every pair; extf's search (first to last trial "
            f"line) {search} s; CPU ratio per pair {cpu}")


def figures(quick: bool = False) -> list[Figure]:
    trials, epochs = (3, 3) if quick else (12, 10)
    workload = f"digits mlp, random search, {trials} trials x {epochs} epochs, callbacks=none"
    extf = ["tune", *MLP_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"]
    drawn: dict[int, list[dict]] = {}  # P2': the trials extf trained in pair i, for the bare loop of the same pair

    def read_plain(result) -> Sample:
        hps = [active(v) for v in json.loads((result.root / "trials.json").read_text())]
        return Sample(result.seconds, f"{result.seconds:.1f} s", {"hps": hps, "cpu": result.cpu})

    def plain(_rep: int) -> Sample:
        with project() as root:
            result = run([PYTHON, str(PLAIN), "--root", str(root), "--trials", str(trials), "--epochs", str(epochs),
                          "--seed", "42", "--tuner-seed", str(derived_seed(42, "random"))], cwd=root)
            if result.returncode != 0:
                raise Failed(f"the plain keras-tuner script failed: {result.error()}")
            result.root = root
            return read_plain(result)

    def extf_remembering(rep: int) -> Sample:
        sample = extf_side(extf, read=read_extf)(rep)
        drawn[rep] = sample.data["hps"]
        return sample

    def bare(rep: int) -> Sample:
        with project() as root:
            (root / "trials.json").write_text(json.dumps(drawn[rep]))
            sample = command_side([PYTHON, str(BARE), "--trials", str(root / "trials.json"), "--epochs",
                                   str(epochs), "--seed", "42"], cwd=root)(rep)
            sample.data = {"hps": drawn[rep]}
            return sample

    def bare_detail(a: list[Sample], _b: list[Sample]) -> str:
        return f"the bare loop trained extf's {len(a[0].data['hps'])} trials of the same pair"

    return [
        Figure("P2", "extf tune / plain keras-tuner + MLflow, wall time", workload, "<= 1.10",
               a=extf_side(extf, read=read_extf), b=plain, detail=same_trials, setup=warm_up),
        Figure("P2'", "extf tune / bare model.fit loop, wall time", workload, "<= 1.05",
               a=extf_remembering, b=bare, detail=bare_detail, setup=warm_up),
    ]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
