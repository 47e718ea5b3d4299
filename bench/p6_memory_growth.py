"""P6: does a long study leak memory? Resident memory growth of one `extf tune` over 100 trials of the default
study's model (digits, cnn with its search space, 1 epoch each, default callbacks, tracking on; --quick: 15 trials),
each repetition a fresh study; the row gives the median and range over the repetitions. Goal: <= 50 MB.

A CNN trial traces more TensorFlow functions and allocates larger tensors than an MLP's, so a leak per trial
(traced functions kept across trials, tensorflow#61791; models or histories kept alive) shows within 100 trials.

The RSS of the extf process (and any children) is sampled every 0.5 s (psutil when installed, else /proc VmRSS).
Definition, chosen so start-up and the final test / model logging do not count as growth:
  base   = the last sample taken before the 5th trial's progress line (TensorFlow, MLflow and the model code are
           loaded and traced by then: the warm-up);
  final  = the median of the samples in the last 10% of the time between the 5th and the last trial line (the
           search only; the median smooths the garbage collector's saw-tooth);
  growth = final - base, over (trials - 5) trials.
The detail also gives the growth per trial and the peak.
"""

from __future__ import annotations

import statistics
import sys

from common import Failed, Figure, Sample, extf_side, mb, script_main, trial_lines

GOAL = "<= 50 MB"
WARM_UP = 5


def growth(samples: list[tuple[float, int]], lines: list[tuple[float, str]]) -> dict | None:
    if len(lines) <= WARM_UP or not samples:
        return None
    t_base, t_end = lines[WARM_UP - 1][0], lines[-1][0]
    before = [rss for t, rss in samples if t <= t_base]
    window = [rss for t, rss in samples if t_end - 0.1 * (t_end - t_base) <= t <= t_end]
    if not before or not window:
        return None
    base, final = before[-1], statistics.median(window)
    search = [rss for t, rss in samples if t_base <= t <= t_end]
    return {"base": base, "final": final, "growth": final - base, "peak": max(search),
            "per_trial": (final - base) / (len(lines) - WARM_UP), "samples": len(samples)}


def read_growth(result) -> Sample:
    g = growth(result.rss, trial_lines(result))
    if g is None:
        raise Failed("too few trial lines or RSS samples to measure")
    return Sample(mb(g["growth"]), f"{mb(g['growth']):.1f} MB ({mb(g['base']):.0f} -> {mb(g['final']):.0f} MB, "
                                   f"{mb(g['per_trial']) * 1024:.0f} KB/trial, peak {mb(g['peak']):.0f} MB, "
                                   f"{result.seconds:.0f} s)")


def figures(quick: bool = False) -> list[Figure]:
    trials = 15 if quick else 100
    return [Figure("P6", f"RSS growth after {WARM_UP} warm-up trials", f"digits cnn, random search, {trials} trials "
                   f"x 1 epoch, default callbacks, tracking on", GOAL,
                   a=extf_side(["tune", "dataset=digits", "model=cnn", "tuner=random", "callbacks=default",
                                f"tuner.max_trials={trials}", "trainer.epochs=1", "seed=42"], read=read_growth,
                               rss_every=0.5),
                   unit="MB")]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
