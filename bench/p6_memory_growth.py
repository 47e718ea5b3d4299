"""P6: does a long study leak memory? Resident memory growth of one `extf tune` over 50 tiny trials (iris, mlp,
1 epoch each, default callbacks, tracking on; --quick: 20 trials). Goal: <= 50 MB.

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

from common import Row, log, mb, na, project, row, run_extf, script_main, trial_lines

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


def measure(quick: bool = False) -> list[Row]:
    trials = 20 if quick else 50
    name = f"RSS growth over {trials} tiny trials (after {WARM_UP} warm-up trials)"
    with project() as root:
        log(f"P6: extf tune, iris mlp, {trials} trials x 1 epoch, sampling RSS every 0.5 s")
        result = run_extf(["tune", "dataset=iris", "model=mlp", "tuner=random", f"tuner.max_trials={trials}",
                           "trainer.epochs=1", "seed=42"], root, rss_every=0.5)
    if result.returncode != 0:
        return [na("P6", name, GOAL, f"extf tune failed: {result.error()}", unit="MB")]
    g = growth(result.rss, trial_lines(result))
    if g is None:
        return [na("P6", name, GOAL, "too few trial lines or RSS samples to measure", unit="MB")]
    return [row("P6", name, mb(g["growth"]), GOAL,
                f"{mb(g['base']):.0f} MB after trial {WARM_UP} -> {mb(g['final']):.0f} MB at the end of the search "
                f"({mb(g['per_trial']) * 1024:.0f} KB/trial, peak {mb(g['peak']):.0f} MB, {g['samples']} samples, "
                f"{result.seconds:.0f} s)", unit="MB")]


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
