"""P5: what parallel workers buy: finished trials per minute of `extf tune tuner.workers=2` divided by the same study
run in-process (the default, no workers), both timed end to end (start-up, search, final test) in fresh project
directories. Goal: >= 1.4.

Workload: the default study's model (digits, cnn, random, seed 42, callbacks=none, tracking on), 10 trials x 8 epochs
(--quick: 4 x 3): trials of a few seconds, as in `make tune`; with sub-second trials the fixed costs (start-up of the
worker process, MLflow runs) dominate both sides. Finished trials are the FINISHED records of the study's trials.jsonl. A second row compares the search
phase only (trials per minute between the first and the last trial's progress line), which is what long studies
approach: the first row also pays the start-up of the worker processes and the final test. The first row's detail
also compares the trials' own durations (the `seconds` of trials.jsonl; same seed, same trials): how much longer a
trial takes on a worker's 1 thread than in-process on 2 bounds what 2 workers can reach at all. If this extf has no
`tuner.workers` the rows say n/a.
"""

from __future__ import annotations

import sys

from common import (
    CNN_DIGITS,
    Row,
    extf_cmd,
    log,
    na,
    project,
    row,
    run,
    run_extf,
    script_main,
    study_trials,
    trial_lines,
    unknown_key,
    warm_up,
)

GOAL = ">= 1.4"


def search_rate(result) -> float | None:
    """Trials per minute between the first and the last trial line (n - 1 trials finished in that span)."""
    lines = trial_lines(result)
    if len(lines) < 2 or lines[-1][0] <= lines[0][0]:
        return None
    return (len(lines) - 1) / ((lines[-1][0] - lines[0][0]) / 60)


def measure(quick: bool = False) -> list[Row]:
    trials, epochs = (4, 3) if quick else (10, 8)
    name = f"trials/min, tuner.workers=2 / in-process ({trials} trials x {epochs} epochs)"
    name_search = "  the same, search phase only (first to last trial line)"
    args = ["tune", *CNN_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"]
    with project() as root:  # a cheap check first: does this extf know the key at all?
        probe = run(extf_cmd(*args, "tuner.workers=2", "--cfg", "job"), cwd=root, extra_env={"EXTF_ROOT": str(root)})
    if probe.returncode != 0:
        reason = "tuner.workers not available" if unknown_key(probe, "tuner.workers") else probe.error()
        return [na("P5", name, GOAL, reason)]
    warm_up()
    rate, search, text, trial_seconds = {}, {}, {}, {}
    for label, extra in (("in-process", []), ("workers=2", ["tuner.workers=2"])):
        with project() as root:
            log(f"P5: extf tune {label}, {trials} trials x {epochs} epochs")
            result = run_extf([*args, *extra], root)
            if result.returncode != 0:
                reason = "tuner.workers not available" if unknown_key(result, "tuner.workers") else result.error()
                return [na("P5", name, GOAL, f"{label}: {reason}")]
            trials_done = [t for t in study_trials(root) if t.get("status") == "FINISHED"]
            done = len(trials_done)
            trial_seconds[label] = sum(t.get("seconds", 0) for t in trials_done)
            rate[label] = done / (result.seconds / 60)
            search[label] = search_rate(result)
            text[label] = f"{label} {done} trials in {result.seconds:.1f} s = {rate[label]:.1f}/min"
    # the same trials (same seed) on 1 thread (a worker) vs 2 threads (in-process): 2 workers can reach at most 2x
    # their time ratio in trials per minute, before any start-up cost
    slowdown = trial_seconds["workers=2"] / trial_seconds["in-process"] if trial_seconds["in-process"] else 0
    ceiling = f"; a trial takes {slowdown:.2f}x as long on a worker's 1 thread, so 2 workers can reach at most " \
              f"{2 / slowdown:.2f}" if slowdown else ""
    rows = [row("P5", name, rate["workers=2"] / rate["in-process"], GOAL, "; ".join(text.values()) + ceiling)]
    if None in search.values():
        rows.append(na("P5", name_search, GOAL, "too few trial lines on stdout"))
    else:
        rows.append(row("P5", name_search, search["workers=2"] / search["in-process"], GOAL,
                        "; ".join(f"{k} {v:.1f}/min" for k, v in search.items())))
    return rows


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
