"""P3b: what tracking costs per trial, in milliseconds: the same study with tracking=mlflow and with tracking=none,
sides alternated (on, off, on, off ...), each timed per trial between its first and its last trial line (every such
interval holds one whole trial and everything it logs: run start, per-epoch history, summary, run end); the figure is
the difference of the median trial, on minus off (the median: a busy second of the machine hits one trial, not the
figure; both sides train the same trials, so their medians compare). Two rows from the same runs: wall time, and the CPU time of the study's own
process (not the tracking process's nor any other child's: /proc/<pid>/stat as each trial line arrives). Goal: <= 50 ms.

Workload: 20 short trials (digits, mlp, random search, seed 42, callbacks=none, 3 epochs; --quick: 8 trials x 2
epochs), in a project whose MLflow store exists already (the study's start-up is P3's business, not this figure's).
Both sides draw the same hyperparameters (same seed), so they train the same models.
"""

from __future__ import annotations

import statistics
import sys

from common import MLP_DIGITS, Failed, Figure, Sample, extf_side, per_trial, script_main, warm_up

GOAL = "<= 50"


def _runs(trials: int, epochs: int):
    """The two sides, each run once per repetition and read by both rows (wall, CPU): a cache keyed by (side, rep)."""
    args = ["tune", *MLP_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"]
    cache: dict[tuple[str, int], tuple[list[float], list[float]]] = {}

    def side(name: str, extra: str, index: int):
        run_once = extf_side([*args, extra], read=per_trial, store=True, own_cpu=True)

        def call(rep: int) -> Sample:
            if (name, rep) not in cache:
                cache[name, rep] = run_once(rep)
            times = cache[name, rep][index]
            if len(times) != trials - 1:
                raise Failed(f"tracking {name}: expected {trials} trial lines. Received: {len(times) + 1}")
            value = statistics.median(times) * 1000
            return Sample(value, f"{value:.0f} ms (mean {statistics.mean(times) * 1000:.0f})")
        return call

    return side


def figures(quick: bool = False) -> list[Figure]:
    trials, epochs = (8, 2) if quick else (20, 3)
    side = _runs(trials, epochs)
    workload = f"digits mlp, random search, {trials} trials x {epochs} epochs, callbacks=none, existing store"
    return [Figure("P3b", f"tracking cost per trial, {what}: tracking=mlflow - tracking=none", workload, GOAL,
                   a=side("on", "tracking=mlflow", index), b=side("off", "tracking=none", index), unit="ms/trial",
                   compare="difference", setup=warm_up)
            for index, what in ((0, "wall"), (1, "CPU of the study's process"))]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
