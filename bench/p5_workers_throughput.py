"""P5: what parallel workers buy the user: finished trials per minute of `extf tune tuner.workers=2` divided by the
same study run in-process (the default, no workers), pair by pair. Goal: >= 1.4.

One definition: trials per minute from the study's start to its end, as the user waits for it: the FINISHED
trials of the study's trials.jsonl divided by the wall time of the whole `extf tune` command (start-up, the search,
the final test and the logged model). Workload: the default study's model (digits, cnn, random, seed 42,
callbacks=none, tracking on), 24 trials x 8 epochs, sized so that the in-process study takes at least 2 minutes
on 2 idle cores (the detail prints both sides' durations) and the fixed costs weigh what they weigh in a real
study (--quick: 4 x 3, a smoke test only). The detail compares the trials'
own durations (the `seconds` of trials.jsonl; same seed, same trials): how much longer a trial takes on a worker's
1 thread than in-process on 2 bounds what 2 workers can reach at all (the ceiling, 2 / slowdown). If this extf has
no `tuner.workers` the row says n/a.
"""

from __future__ import annotations

import statistics
import sys

from common import (
    CNN_DIGITS,
    Failed,
    Figure,
    Sample,
    extf_cmd,
    extf_side,
    project,
    run,
    script_main,
    study_trials,
    unknown_key,
    warm_up,
)

GOAL = ">= 1.4"


def trials_per_minute(result) -> Sample:
    done = [t for t in study_trials(result.root) if t.get("status") == "FINISHED"]
    rate = len(done) / (result.seconds / 60)
    return Sample(rate, f"{len(done)} in {result.seconds:.0f} s = {rate:.1f}/min",
                  {"trial_seconds": sum(t.get("seconds", 0) for t in done)})


def ceiling(a: list[Sample], b: list[Sample]) -> str:
    slowdown = statistics.median(x.data["trial_seconds"] / y.data["trial_seconds"] for x, y in zip(a, b)
                                 if y.data["trial_seconds"])
    return (f"a trial takes {slowdown:.2f}x as long on a worker's 1 thread as in-process (median over the pairs), "
            f"so 2 workers can reach at most {2 / slowdown:.2f}")


def figures(quick: bool = False) -> list[Figure]:
    trials, epochs = (4, 3) if quick else (24, 8)
    args = ["tune", *CNN_DIGITS, f"tuner.max_trials={trials}", f"trainer.epochs={epochs}"]

    def probe() -> None:  # a cheap check first: does this extf know the key at all?
        with project() as root:
            result = run(extf_cmd(*args, "tuner.workers=2", "--cfg", "job"), cwd=root,
                         extra_env={"EXTF_ROOT": str(root)})
        if result.returncode != 0:
            raise Failed("tuner.workers not available" if unknown_key(result, "tuner.workers") else result.error())
        warm_up()

    return [Figure("P5", "trials/min from study start to end, tuner.workers=2 / in-process",
                   f"digits cnn, random search, {trials} trials x {epochs} epochs, callbacks=none, tracking on", GOAL,
                   a=extf_side([*args, "tuner.workers=2"], read=trials_per_minute),
                   b=extf_side(args, read=trials_per_minute), detail=ceiling, setup=probe)]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
