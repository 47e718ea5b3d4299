"""Your own images: a folder with one sub-folder of images per class, streamed from disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from extf.config.constraints import POSITIVE_INT, OneOf
from extf.config.schema import DatasetConf
from extf.data.splits import Meta, Splits, make_file_splits
from extf.errors import DataError


@dataclass
class Conf(DatasetConf):
    path: str  # a folder with one sub-folder of images per class
    height: int
    width: int
    color_mode: str  # grayscale (1 channel) | rgb (3 channels)
    skip_bad_files: bool  # true: leave out (and count) files that cannot be decoded instead of stopping
    constraints: ClassVar = {"height": POSITIVE_INT, "width": POSITIVE_INT,
                             "color_mode": OneOf({"grayscale", "rgb"})}


def load(cfg: dict, seed: int) -> Splits:
    """Users' own images: one sub-folder per class (the folder name is the class), PNG / JPEG / GIF / BMP of any
    size and mode. The file list is split (seeded, stratified); the images stream from disk, converted (grayscale or
    rgb) and resized to height x width, as the model takes them."""
    from extf.data.images import IMAGE_SUFFIXES, ImageReader, check_images, list_images

    root = Path(cfg["path"]).expanduser()
    if not root.is_dir():
        raise DataError(f"Image folder not found: expected a folder with one sub-folder of images per class. Check "
                        f"dataset.path (relative paths start at {Path.cwd()}). Received: dataset.path={cfg['path']!r}")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root} needs at least 2 class sub-folders (e.g. cats/ and dogs/), each with images. "
                        f"Received: {len(classes)} sub-folder(s) {[c.name for c in classes]}")
    skip = bool(cfg.get("skip_bad_files", False))
    files, labels, skipped = [], [], []
    for index, folder in enumerate(classes):
        listed = list_images(folder)
        good, bad = check_images(listed, skip_bad_files=skip)
        skipped += bad
        if not good:
            what = f"only unreadable images ({len(bad)}, skipped)" if bad else "no images"
            raise DataError(f"Class folder {folder.name!r} has {what}; expected files ending in "
                            f"{', '.join(IMAGE_SUFFIXES)}. Add some or remove the folder. Received: {folder}")
        files += good
        labels += [index] * len(good)
    if skipped:
        example = ", ".join(f"{p.name} ({why})" for p, why in skipped[:3])
        print(f"dataset.skip_bad_files=true: left out {len(skipped)} unreadable image(s) of {len(files) + len(skipped)}"
              f", e.g. {example}", flush=True)
    names = tuple(c.name for c in classes)
    task = "binary" if len(names) == 2 else "multiclass"
    reader = ImageReader.for_shape((cfg["height"], cfg["width"], 1 if cfg["color_mode"] == "grayscale" else 3))
    # pixels stay 0..255 in the data; the model rescales, so it takes the raw images `extf predict` reads
    meta = Meta("image_dir", task, "image", reader.shape, names,
                extra={"rescale": 1.0 / 255.0, "n_files": len(files), "skipped_files": len(skipped)})
    return make_file_splits(files, np.asarray(labels, dtype="int64"), meta, reader, cfg["val_fraction"],
                            cfg["test_fraction"], seed)
