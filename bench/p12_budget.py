"""P12: does a time budget end the study on time? `extf tune tuner.time_budget=60` on the default study (digits
cnn, random search, the default callbacks, MLflow tracking into an existing store, `tuner.max_trials=1000` so that
only the budget ends the search): the seconds the study took beyond its budget and one epoch, i.e.
(study time) - (60 s + one epoch's seconds), per run (3 runs; --reps more; --quick: a 20 s budget). Goal: <= 15 s:
the search stops on time (a running trial ends at its next epoch boundary) and the best model is tested and logged
within 15 s after.

Study time = the process's wall time (start-up, search, test, logging, exit): the budget counts from the study's
start, its start-up included (importing TensorFlow, loading the data), also on resume, so a user's `time_budget=60`
is the whole command. The detail gives the start-up before the first trial (the arrival of its progress line minus
the `seconds` trials.jsonl records for it) and the time from the last trial line to the exit (test, artifacts,
logged model). One epoch's seconds = the median over the study's trials of their seconds per epoch (a trial's own
overhead, its model's build and its first epoch's tracing included: an upper bound of an epoch alone). The run must
say that the budget stopped it and print its test metrics once, or the figure is n/a.
"""

from __future__ import annotations

import statistics
import sys

from common import Failed, Figure, Sample, extf_side, script_main, study_trials, trial_lines, warm_up

GOAL = "<= 15"
STOPPED = "time budget tuner.time_budget="  # the line extf prints when the budget ended the search


def reader(budget: float):
    """The reader of one run: its seconds beyond budget + one epoch, and what they are made of."""
    def read(result) -> Sample:
        out = result.stdout
        if STOPPED not in out:
            raise Failed(f"the study did not stop on its budget (no '{STOPPED}...' line): {result.error()}")
        if out.count("test (evaluated once):") != 1:
            raise Failed("the study did not print its test metrics once")
        trials = study_trials(result.root)
        lines = trial_lines(result)
        if not trials or not lines:
            raise Failed("no trial recorded")
        search_start = lines[0][0] - float(trials[0]["seconds"])
        per_epoch = [t["seconds"] / t["epochs"] for t in trials if t.get("epochs")]
        epoch = statistics.median(per_epoch)
        tail = result.seconds - lines[-1][0]  # after the last trial: the test, the artifacts, the logged model
        over = result.seconds - budget - epoch
        return Sample(over, f"{over:+.1f} s", {
            "wall": result.seconds, "startup": search_start, "epoch": epoch, "trials": len(trials), "tail": tail})
    return read


def detail(a: list[Sample], _b: list[Sample]) -> str:
    return "; ".join(
        f"wall {s.data['wall']:.1f} s with {s.data['startup']:.1f} s of start-up, {s.data['trials']} trials, "
        f"one epoch {s.data['epoch']:.2f} s, last trial line to exit {s.data['tail']:.1f} s" for s in a)


def figures(quick: bool = False) -> list[Figure]:
    budget = 20 if quick else 60
    args = ["tune", f"tuner.time_budget={budget}", "tuner.max_trials=1000"]
    return [Figure("P12", f"wall time - ({budget} s budget + one epoch)",
                   f"extf tune tuner.time_budget={budget} (digits cnn, random, default callbacks, MLflow)", GOAL,
                   a=extf_side(args, read=reader(budget), store=True), unit="s", detail=detail, setup=warm_up)]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
