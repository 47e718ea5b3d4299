"""P1: how fast the CLI answers without training: `extf --help` and `extf tune --cfg job`, each divided by the time
of `python -c "import keras"`, pair by pair (at least 5 pairs: the commands take a second or two). Goal: <= 0.25.

Every command runs in the checkout with the same environment (common.ENV), so the ratio says how much of a Keras
import the CLI costs before it does any work.
"""

from __future__ import annotations

import sys

from common import PYTHON, Figure, command_side, extf_cmd, script_main, warm_up

GOAL = "<= 0.25"


def figures(quick: bool = False) -> list[Figure]:
    keras = command_side([PYTHON, "-c", "import keras"])
    return [Figure("P1", f"{name} / import keras, wall time", "no training: the CLI parses and composes", GOAL,
                   a=command_side(extf_cmd(*args)), b=keras, min_reps=1 if quick else 5, setup=warm_up)
            for name, args in (("extf --help", ["--help"]), ("extf tune --cfg job", ["tune", "--cfg", "job"]))]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
