"""P9: memory does not grow with the data. Peak resident memory (the process tree, sampled every 0.5 s) of the same
`extf train dataset=image_dir` as P8 (64x64 RGB PNGs, 10 classes, the default CNN, 2 epochs) on 40,000 images
divided, pair by pair, by the peak on 10,000 (bench/image_folders.py; the larger folder holds the smaller one).
Goal: <= 1.15 (the peaks differ by at most 15 %; less memory on more data also meets it).

Only the file list and the labels grow with the folder (tens of bytes a file); the images stream from disk in
batches. The 10,000-image runs are P8's extf runs when both figures run in one bench call. --quick: 1,000 and 4,000
images, 1 epoch (a smoke test only).
"""

from __future__ import annotations

import sys

from common import Figure, Sample, script_main, warm_up
from image_folders import image_folder, peak_mb, train_run


def figures(quick: bool = False) -> list[Figure]:
    small, large, epochs = (1000, 4000, 1) if quick else (10000, 40000, 2)
    workload = f"extf train, {large} vs {small} generated PNGs (64x64 RGB), default CNN, {epochs} epoch(s)"

    def setup() -> None:
        image_folder(large)
        image_folder(small)
        warm_up()

    def peak(n: int):
        def read(rep: int) -> Sample:
            result = train_run("extf", n, epochs, rep)
            value = peak_mb(result)
            return Sample(value, f"{value:.0f} MB in {result.seconds:.0f} s")
        return read

    return [Figure("P9", f"peak RSS on {large} / on {small} images", workload, "<= 1.15", a=peak(large),
                   b=peak(small), setup=setup)]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
