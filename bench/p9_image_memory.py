"""P9: memory does not grow with the data. Peak resident memory of the same `extf train dataset=image_dir` (as P8:
64x64 RGB PNGs, 10 classes, the default CNN, 2 epochs) on 10,000 and on 40,000 generated images
(bench/image_folders.py; the larger folder holds the smaller one). Goal: the peaks differ by <= 15 %
(|peak_40k - peak_10k| / peak_10k).

The process tree's RSS (extf and its MLflow process) is sampled every 0.5 s. What may grow with the folder is only
the file list and labels (tens of bytes a file); images stream from disk in batches. --quick: 1,000 and 4,000
images, 1 epoch.
"""

from __future__ import annotations

import sys

from common import Row, log, mb, na, project, row, run_extf, script_main, warm_up
from image_folders import image_folder
from p8_image_folder import extf_args, peak

GOAL = "<= 0.15"


def measure(quick: bool = False) -> list[Row]:
    small, large, epochs = (1000, 4000, 1) if quick else (10000, 40000, 2)
    name = f"peak RSS growth, {small} -> {large} images ({epochs} epoch(s))"
    log(f"P9: generating (or reusing) folders of {small} and {large} PNG images")
    folders = {n: image_folder(n) for n in (small, large)}
    warm_up()
    peaks, seconds = {}, {}
    for n, folder in folders.items():
        with project() as root:
            log(f"P9: extf train on {n} images, {epochs} epoch(s)")
            result = run_extf(extf_args(folder, epochs), root, rss_every=0.5)
        if result.returncode != 0:
            return [na("P9", name, GOAL, f"extf train on {n} images failed: {result.error()}")]
        peaks[n], seconds[n] = peak(result), result.seconds
        if not peaks[n]:
            return [na("P9", name, GOAL, "no RSS samples")]
    growth = abs(peaks[large] - peaks[small]) / peaks[small]
    return [row("P9", name, growth, GOAL,
                f"peak {mb(peaks[small]):.0f} MB ({seconds[small]:.0f} s) on {small} vs {mb(peaks[large]):.0f} MB "
                f"({seconds[large]:.0f} s) on {large}")]


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
