"""P8: training on a folder of images that streams. `extf train dataset=image_dir` on a generated folder of 10,000
PNG images (10 classes, 64x64 RGB; bench/image_folders.py, made once before the first run) for 2 epochs with the
default CNN, divided, pair by pair, by a plain Keras script doing the same work with `image_dataset_from_directory`
(bench/plain_image_folder.py: prefetch, the same CNN, split sizes and epochs). Two figures from the same runs:

  wall time (end to end, subprocesses)           Goal: <= 1.10
  peak resident memory of the process tree       Goal: <= 1.20   (extf's MLflow process counts)

extf does more on top (its check of every file, the test split's predictions, plots, the logged MLflow model): that
is part of what the ratios measure. --quick: 1,000 images, 1 epoch (a smoke test only).
"""

from __future__ import annotations

import sys

from common import Figure, Sample, script_main, warm_up
from image_folders import image_folder, peak_mb, train_run


def figures(quick: bool = False) -> list[Figure]:
    n, epochs = (1000, 1) if quick else (10000, 2)
    workload = f"{n} generated PNGs (10 classes, 64x64 RGB), default CNN, {epochs} epoch(s), callbacks=none"

    def setup() -> None:
        image_folder(n)
        warm_up()

    def wall(side: str):
        def read(rep: int) -> Sample:
            result = train_run(side, n, epochs, rep)
            return Sample(result.seconds, f"{result.seconds:.1f} s (CPU {result.cpu:.0f} s)")
        return read

    def peak(side: str):
        def read(rep: int) -> Sample:
            value = peak_mb(train_run(side, n, epochs, rep))
            return Sample(value, f"{value:.0f} MB")
        return read

    return [
        Figure("P8", "extf train image_dir / plain image_dataset_from_directory, wall time", workload, "<= 1.10",
               a=wall("extf"), b=wall("plain"), setup=setup),
        Figure("P8", "extf train image_dir / plain image_dataset_from_directory, peak RSS", workload, "<= 1.20",
               a=peak("extf"), b=peak("plain"), setup=setup),
    ]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
