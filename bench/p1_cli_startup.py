"""P1: how fast the CLI answers without training: `extf --help` and `extf tune --cfg job`, each divided by the time
of `python -c "import keras"` measured in the same run (median of 5 runs each; --quick: 3). Goal: <= 0.25.

Every command runs in the checkout with the same environment (common.ENV), so the ratio says how much of a Keras
import the CLI costs before it does any work.
"""

from __future__ import annotations

import sys

from common import PYTHON, Row, extf_cmd, log, median_seconds, row, script_main, warm_up

GOAL = "<= 0.25"


def measure(quick: bool = False) -> list[Row]:
    repeats = 3 if quick else 5
    warm_up()
    log(f"P1: timing import keras, extf --help, extf tune --cfg job ({repeats} runs each)")
    baseline = median_seconds([PYTHON, "-c", "import keras"], repeats)
    rows = []
    for name, args in (("extf --help / import keras", ["--help"]),
                       ("extf tune --cfg job / import keras", ["tune", "--cfg", "job"])):
        seconds = median_seconds(extf_cmd(*args), repeats)
        rows.append(row("P1", name, seconds / baseline, GOAL,
                        f"{seconds:.2f} s vs {baseline:.2f} s (median of {repeats})"))
    return rows


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
