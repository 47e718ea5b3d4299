"""P3b: what tracking costs each trial, in milliseconds, measured directly: `extf tune` with tracking=mlflow run
through bench/tracking_probe.py, which times the study's tracker calls from each trial's `start_trial` to the `flush`
after its `end_trial` (the trial's run is in the store then). Two rows from the same runs, each the mean over the
trials but the first (the first trial's writes also warm the store's statement caches: a cost per study, P3's):

- wall: how long the study's process was inside tracker calls per trial (sending, and waiting for the store at the
  trial's end): what each trial took longer because it was tracked;
- CPU: the CPU time tracking used per trial in both processes: the study's thread in those calls plus the tracking
  process's store writes in the same window (on a machine whose cores are all busy, that CPU is taken from the
  training; on 2 cores the tracking process runs at a lower priority, extf.tracking.process).

Goal: <= 50 ms each. The end-to-end effect (the same 20-trial study with tracking on / off) is P3's third row: it
includes everything, but its run-to-run spread here (seconds per study) is wider than 20 x 50 ms, which is why this
figure measures the calls themselves.

Workload: 20 short trials (digits, mlp, random search, seed 42, callbacks=none, 3 epochs; --quick: 8 trials x 2
epochs), in a project whose MLflow store exists already (the study's start-up is P3's business, not this figure's).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from common import MLP_DIGITS, PYTHON, Failed, Figure, Sample, project, run, script_main, warm_up

GOAL = "<= 50"
PROBE = Path(__file__).resolve().with_name("tracking_probe.py")
MARK = "EXTF-TRACKING-PROBE "


def probed(args: list[str]) -> list[dict]:
    """Run `extf <args>` through the probe in a throw-away project with a store; the per-trial measurements."""
    with project(store=True) as root:
        result = run([PYTHON, str(PROBE), *args], cwd=root, extra_env={"EXTF_ROOT": str(root)})
        if not result.ok:
            raise Failed(f"extf {args[0]} failed: {result.error()}")
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise Failed("the probe printed no measurements (was the study tracked?)")
    return json.loads(lines[-1][len(MARK):])


def _runs(trials: int, epochs: int):
    """Both rows read the same runs: a cache keyed by the repetition."""
    args = ["tune", *MLP_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}", "tracking=mlflow"]
    cache: dict[int, list[dict]] = {}

    def side(what: str):
        def call(rep: int) -> Sample:
            if rep not in cache:
                cache[rep] = probed(args)
            measured = cache[rep]
            if len(measured) != trials:
                raise Failed(f"expected {trials} measured trials. Received: {len(measured)}")
            if what == "wall":
                values = [t["wait_ms"] for t in measured]
            else:
                values = [t["study_cpu_ms"] + t["tracker_cpu_ms"] for t in measured]
            later = values[1:]
            value = statistics.mean(later)
            return Sample(value, f"{value:.0f} ms (median {statistics.median(later):.0f}, first trial "
                                 f"{values[0]:.0f})")
        return call

    return side


def figures(quick: bool = False) -> list[Figure]:
    trials, epochs = (8, 2) if quick else (20, 3)
    side = _runs(trials, epochs)
    workload = f"digits mlp, random search, {trials} trials x {epochs} epochs, callbacks=none, existing store"
    return [
        Figure("P3b", "tracking per trial, wall: the study's time in tracker calls", workload, GOAL,
               a=side("wall"), unit="ms/trial", setup=warm_up),
        Figure("P3b", "tracking per trial, CPU: the study's tracker calls + the tracking process's writes", workload,
               GOAL, a=side("cpu"), unit="ms/trial", setup=warm_up),
    ]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
