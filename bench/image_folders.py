"""Generated image folders for P8 and P9 (N PNG images, 64x64 RGB, in 10 class folders, made once per bench call),
and the trainings both figures read (each run once per repetition, shared: P8's wall-time and peak-RSS figures
read the same runs, P9's 10,000-image side reads P8's extf runs when both run in one bench call).

Each image is a class colour plus strong per-pixel noise (so a CNN has something to learn and the PNG files are
about 12 KB each, as photos of that size: 10,000 images ~ 120 MB). A larger folder is the smaller one plus more files
(the first N files of every folder are the same whatever N), so P9's 40,000 reuse P8's 10,000. The folders live in
one temporary directory, removed when the bench process ends (kept with EXTF_BENCH_KEEP=1).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import PYTHON, Failed, Run, project, run, run_extf

PLAIN = Path(__file__).resolve().parent / "plain_image_folder.py"

CLASSES = 10
SIZE = 64
_ROOT: Path | None = None


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="extf-bench-images-"))
        if os.environ.get("EXTF_BENCH_KEEP") != "1":
            atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def _write(job: tuple[str, int, int, int]) -> None:
    """Images start..end-1 of one class folder (a job per 1,000 images over 2 processes: PNG encoding is the cost);
    image i of a class is the same whatever the job, so folders of different sizes share their first files."""
    from PIL import Image

    folder, label, start, end = job
    colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 151) % 256], dtype="int16")
    for i in range(start, end):
        path = Path(folder) / f"{i:06d}.png"
        if path.exists():
            continue
        noise = np.random.default_rng([label, i]).integers(-70, 71, size=(SIZE, SIZE, 3), dtype="int16")
        Image.fromarray(np.clip(colour + noise, 0, 255).astype("uint8")).save(path, compress_level=1)


def image_folder(n: int) -> Path:
    """A folder of `n` images (a multiple of 10,000 / 1,000 per class is exact), created on first use."""
    per_class = max(1, n // CLASSES)
    root = _root() / "photos"
    counts = []
    for label in range(CLASSES):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        counts.append(len(list(folder.iterdir())))
    if min(counts) < per_class:
        jobs = [(str(root / f"class_{label}"), label, start, min(start + 1000, per_class))
                for label in range(CLASSES) for start in range(0, per_class, 1000)]
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(_write, jobs))
    # the first `per_class` files of each class, as a folder of hard links (no copy)
    view = _root() / f"photos_{n}"
    if not view.exists():
        tmp = _root() / f".photos_{n}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for label in range(CLASSES):
            (tmp / f"class_{label}").mkdir(parents=True)
            for path in sorted((root / f"class_{label}").iterdir())[:per_class]:
                os.link(path, tmp / f"class_{label}" / path.name)
        tmp.rename(view)
    return view


_RUNS: dict[tuple, Run] = {}


def extf_args(folder: Path, epochs: int) -> list[str]:
    return ["train", "dataset=image_dir", f"dataset.path={folder}", "dataset.height=64", "dataset.width=64",
            "dataset.color_mode=rgb", "model=cnn", "callbacks=none", f"trainer.epochs={epochs}", "seed=42"]


def train_run(side: str, n: int, epochs: int, rep: int) -> Run:
    """Repetition `rep` of `extf train` (side "extf") or of the plain Keras script (side "plain") on `n` images,
    its RSS sampled every 0.5 s; run on first use, then shared."""
    key = (side, n, epochs, rep)
    if key not in _RUNS:
        folder = image_folder(n)
        with project() as root:
            if side == "extf":
                result = run_extf(extf_args(folder, epochs), root, rss_every=0.5, timeout=3600)
            else:
                result = run([PYTHON, str(PLAIN), "--data", str(folder), "--epochs", str(epochs), "--seed", "42"],
                             cwd=root, rss_every=0.5, timeout=3600)
        if not result.ok:
            raise Failed(f"{side} on {n} images failed: {result.error()}")
        if not result.rss:
            raise Failed(f"{side} on {n} images: no RSS samples")
        _RUNS[key] = result
    return _RUNS[key]


def peak_mb(result: Run) -> float:
    return max(rss for _, rss in result.rss) / 2**20
