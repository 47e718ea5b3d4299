"""P1: how fast the CLI answers without training: `extf --help` and `extf tune --cfg job`, each divided by the time of
`python -c "import keras"` measured in the same run (median of N runs each). Goal: <= 0.25. Reports, never fails."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def seconds(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    python = sys.executable
    baseline = seconds([python, "-c", "import keras"])
    rows = [("extf --help", seconds([python, "-m", "extf.cli", "--help"])),
            ("extf tune --cfg job", seconds([python, "-m", "extf.cli", "tune", "--cfg", "job"]))]
    print(f"P1 baseline: python -c 'import keras' = {baseline:.2f} s (median of {RUNS})")
    print(f"{'command':<22} {'seconds':>8} {'ratio':>7}  goal")
    for name, value in rows:
        print(f"{name:<22} {value:>8.2f} {value / baseline:>7.2f}  <= 0.25")
    return 0


if __name__ == "__main__":
    sys.exit(main())
