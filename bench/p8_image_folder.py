"""P8: training on a folder of images that streams. `extf train dataset=image_dir` on a generated folder of 10,000
PNG images (10 classes, 64x64 RGB; bench/image_folders.py) for 2 epochs, divided by a plain Keras script doing the
same work with `image_dataset_from_directory` (bench/plain_image_folder.py: the same CNN, split sizes and epochs).
Goals: wall <= 1.10, peak RSS <= 1.20.

Both run as subprocesses, timed end to end, their resident memory (the process tree: extf's MLflow process counts)
sampled every 0.5 s; the plain script runs first, then extf, in one bench call on the same folder (generated once,
before either is timed). extf does more on top (its checks of every file, the test split's predictions, plots,
the logged MLflow model): that is part of what the ratios measure. --quick: 1,000 images, 1 epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import PYTHON, Row, log, mb, na, project, row, run, run_extf, script_main, warm_up
from image_folders import image_folder

WALL_GOAL, RSS_GOAL = "<= 1.10", "<= 1.20"
PLAIN = Path(__file__).resolve().parent / "plain_image_folder.py"


def extf_args(folder: Path, epochs: int) -> list[str]:
    return ["train", "dataset=image_dir", f"dataset.path={folder}", "dataset.height=64", "dataset.width=64",
            "dataset.color_mode=rgb", "model=cnn", "callbacks=none", f"trainer.epochs={epochs}", "seed=42"]


def peak(result) -> int | None:
    return max((rss for _, rss in result.rss), default=None)


def measure(quick: bool = False) -> list[Row]:
    n, epochs = (1000, 1) if quick else (10000, 2)
    wall_name = f"extf train / plain Keras, wall ({n} PNG images, {epochs} epoch(s))"
    rss_name = f"extf train / plain Keras, peak RSS ({n} PNG images)"
    log(f"P8: generating (or reusing) a folder of {n} PNG images")
    folder = image_folder(n)
    warm_up()
    with project() as plain_root, project() as extf_root:
        log(f"P8: plain Keras, image_dataset_from_directory, {epochs} epoch(s)")
        plain = run([PYTHON, str(PLAIN), "--data", str(folder), "--epochs", str(epochs), "--seed", "42"],
                    cwd=plain_root, rss_every=0.5)
        if plain.returncode != 0:
            return [na("P8", wall_name, WALL_GOAL, f"the plain script failed: {plain.error()}")]
        log(f"P8: extf train dataset=image_dir, {epochs} epoch(s)")
        extf = run_extf(extf_args(folder, epochs), extf_root, rss_every=0.5)
        if extf.returncode != 0:
            return [na("P8", wall_name, WALL_GOAL, f"extf train failed: {extf.error()}")]
    rows = [row("P8", wall_name, extf.seconds / plain.seconds, WALL_GOAL,
                f"extf {extf.seconds:.1f} s vs plain {plain.seconds:.1f} s; CPU: extf {extf.cpu:.1f} s vs plain "
                f"{plain.cpu:.1f} s")]
    p_extf, p_plain = peak(extf), peak(plain)
    if not p_extf or not p_plain:
        rows.append(na("P8", rss_name, RSS_GOAL, "no RSS samples"))
    else:
        rows.append(row("P8", rss_name, p_extf / p_plain, RSS_GOAL,
                        f"extf {mb(p_extf):.0f} MB vs plain {mb(p_plain):.0f} MB"))
    return rows


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
