"""Dataset loaders: embedded (scikit-learn, generated, shipped with extf) and user files (CSV / Parquet, NPZ,
image folders).

`load_dataset(cfg, seed)` returns `Splits` and is cached, so a study loads its data once per process.
No loader touches the network.
"""

from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from extf.data.splits import Meta, Splits, make_file_splits, make_splits
from extf.errors import DataError

NABIYA_PITCHES = "cdefgab"
NABIYA_DURATIONS = "48"
NABIYA_VOCAB = tuple(p + d for p in NABIYA_PITCHES for d in NABIYA_DURATIONS)  # c4 c8 d4 d8 ... b8: 14 classes


def load_dataset(ds_cfg, seed: int, allow_targets=()) -> Splits:
    """Load the dataset a (validated) `dataset` config names and split it; cached per config and seed.
    `allow_targets`: the project's packages, for a dataset given as its own callable (`_target_`)."""
    plain = ds_cfg if isinstance(ds_cfg, dict) else _to_dict(ds_cfg)
    return _load_cached(json.dumps(plain, sort_keys=True), int(seed), tuple(allow_targets))


def _to_dict(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


@lru_cache(maxsize=8)
def _load_cached(key: str, seed: int, allow_targets: tuple = ()) -> Splits:
    cfg = json.loads(key)
    if "_target_" in cfg:  # the project's own loader
        from extf.data import user

        return user.load(cfg, seed, allow_targets)
    name = cfg["name"]
    if name in FILE_LOADERS:  # the list of files is split; the data stream from them when used
        return FILE_LOADERS[name](cfg, seed)
    loader = LOADERS.get(name)
    if loader is None:
        raise DataError(f"Unknown dataset {name!r}. Expected one of: {', '.join(sorted([*LOADERS, *FILE_LOADERS]))}. "
                        f"Received: dataset.name={name!r}")
    x, y, meta = loader(cfg, seed)
    splits = make_splits(x, y, meta, cfg["val_fraction"], cfg["test_fraction"], seed,
                         standardize=bool(cfg.get("standardize", False)))
    if "table" in splits.meta.extra:  # category columns or missing cells: the model's preprocessing statistics
        from extf.data.tables import fit_statistics

        splits = fit_statistics(splits, cfg)
    return splits


# --------------------------------------------------------------------------- scikit-learn
def _sklearn(loader_name: str, task: str):
    def load(cfg: dict, seed: int):
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)()
        x = bunch.data.astype("float32")
        y = bunch.target.astype("int64")
        names = tuple(str(n) for n in bunch.target_names)
        meta = Meta(cfg["name"], task, "tabular", (x.shape[1],), names,
                    extra={"feature_names": [str(f) for f in bunch.feature_names]})
        return x, y, meta

    return load


def _digits(cfg: dict, seed: int):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("float32")[..., np.newaxis]  # (n, 8, 8, 1), raw pixel values 0..16
    y = bunch.target.astype("int64")
    # the model rescales to [0, 1] itself, so it takes the raw images sklearn gives
    return x, y, Meta("digits", "multiclass", "image", x.shape[1:], tuple(str(c) for c in range(10)),
                      extra={"rescale": 1.0 / 16.0})


# --------------------------------------------------------------------------- generated sequences
def _sine(cfg: dict, seed: int):
    rng = np.random.default_rng(seed)
    t = np.arange(cfg["n_points"], dtype="float64")
    series = np.sin(2 * np.pi * t / cfg["period"]) + rng.normal(0.0, cfg["noise"], size=t.shape)
    window = cfg["window"]
    if window >= len(series):
        raise DataError(f"dataset.window must be smaller than dataset.n_points. Received: "
                        f"dataset.window={window}, dataset.n_points={len(series)}")
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], window)[..., np.newaxis].astype("float32")
    y = series[window:].astype("float32")
    return x, y, Meta("sine", "regression", "sequence", x.shape[1:], ordered=True)


def read_nabiya(path: str | None = None) -> list[str]:
    """The melody as note tokens (pitch letter + duration), comments and blank lines skipped."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"Melody file not found: expected a text file of note tokens such as 'g8 e8 e4'. "
                            f"Check dataset.path. Received: dataset.path={path!r}")
        text = p.read_text(encoding="utf-8")
    else:
        text = resources.files("extf.data").joinpath("files/nabiya.txt").read_text(encoding="utf-8")
    tokens = [tok for line in text.splitlines() if not line.lstrip().startswith("#") for tok in line.split()]
    bad = [t for t in tokens if t not in NABIYA_VOCAB]
    if bad:
        raise DataError(f"Unknown note token(s) in the melody: expected a pitch c-b followed by a duration 4 or 8 "
                        f"(e.g. g8). Received: {bad[:5]}")
    return tokens


def _nabiya(cfg: dict, seed: int):
    tokens = read_nabiya(cfg.get("path")) * cfg.get("repeats", 1)
    window = cfg["window"]
    if window >= len(tokens):
        raise DataError(f"dataset.window must be smaller than the melody length ({len(tokens)} notes). "
                        f"Received: dataset.window={window}")
    idx = np.array([NABIYA_VOCAB.index(t) for t in tokens])
    if cfg["features"] == "index":
        feats = (idx / float(len(NABIYA_VOCAB)))[:, np.newaxis]
    else:  # pitch_duration: the notes' two attributes, each scaled to [0, 1]
        pitch = np.array([NABIYA_PITCHES.index(t[0]) for t in tokens]) / (len(NABIYA_PITCHES) - 1)
        dur = np.array([NABIYA_DURATIONS.index(t[1]) for t in tokens], dtype="float64")
        feats = np.stack([pitch, dur], axis=1)
    x = np.stack([feats[i: i + window] for i in range(len(tokens) - window)]).astype("float32")
    y = idx[window:].astype("int64")
    return x, y, Meta("nabiya", "multiclass", "sequence", x.shape[1:], NABIYA_VOCAB, ordered=True)


# --------------------------------------------------------------------------- generated images
SHAPE_CLASSES = ("background", "circle", "square", "triangle")
# radius of the circle around a shape, per unit of its size: a square's corners reach sqrt(2) out, and a triangle
# is drawn 1.3 times larger than a circle of the same size so that their areas are alike
BOUND_FACTOR = {1: 1.0, 2: float(np.sqrt(2)), 3: 1.3}


def _shapes(cfg: dict, seed: int):
    """Grayscale images of 1 to `max_shapes` circles, squares and triangles with a class per pixel (segmentation).

    Shapes are about 1/4 to 2/5 of the image wide, never overlap or touch (so every boundary in the mask is visible in
    the image), and have a random brightness at least 0.2 above a random background level; Gaussian pixel noise
    of standard deviation `noise` goes over everything. The class of a shape is in its outline only.
    """
    n, size, max_shapes, noise = cfg["n_samples"], cfg["image_size"], cfg["max_shapes"], cfg["noise"]
    rng = np.random.default_rng(seed)
    # pixel centres, so that a shape covers the pixels whose centre is inside it
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    images = np.empty((n, size, size, 1), dtype="float32")
    masks = np.zeros((n, size, size), dtype="int64")
    for i in range(n):
        background = rng.uniform(0.0, 0.3)
        image = np.full((size, size), background)
        placed: list[tuple[float, float, float]] = []  # (row, col, bounding radius) of the shapes drawn so far
        for _ in range(rng.integers(1, max_shapes + 1)):
            for _attempt in range(30):  # a crowded image gets fewer shapes rather than overlapping ones
                label = int(rng.integers(1, len(SHAPE_CLASSES)))
                radius = rng.uniform(size / 9, size / 5)  # half a circle's or square's width
                bound = radius * BOUND_FACTOR[label]
                r0, c0 = rng.uniform(bound, size - bound, size=2)
                if all(np.hypot(r0 - r, c0 - c) > bound + b + 1.5 for r, c, b in placed):
                    break
            else:
                continue
            inside = _shape_pixels(label, r0, c0, radius, rows, cols, rng)
            if not inside.any():
                continue
            placed.append((r0, c0, bound))
            masks[i][inside] = label
            image[inside] = rng.uniform(background + 0.2, 1.0)
        images[i, ..., 0] = image + rng.normal(0.0, noise, size=image.shape)
    meta = Meta("shapes", "segmentation", "image", (size, size, 1), SHAPE_CLASSES)
    return images, masks, meta


def _shape_pixels(label: int, r0: float, c0: float, radius: float, rows, cols, rng) -> np.ndarray:
    """Boolean mask of a circle (1), an axis-aligned square (2) or a randomly turned equilateral triangle (3)."""
    if label == 1:
        return (rows - r0) ** 2 + (cols - c0) ** 2 <= radius**2
    if label == 2:
        return (np.abs(rows - r0) <= radius) & (np.abs(cols - c0) <= radius)
    turn = rng.uniform(0, 2 * np.pi / 3)  # an equilateral triangle repeats every 120 degrees
    angles = turn + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    reach = radius * BOUND_FACTOR[3]
    vertices = np.stack([r0 + reach * np.sin(angles), c0 + reach * np.cos(angles)], axis=1)
    inside = np.ones(rows.shape, dtype=bool)
    for k in range(3):  # inside = on the same side of each edge as the centre
        (ra, ca), (rb, cb) = vertices[k], vertices[(k + 1) % 3]
        side = (rb - ra) * (cols - ca) - (cb - ca) * (rows - ra)
        centre_side = (rb - ra) * (c0 - ca) - (cb - ca) * (r0 - ra)
        inside &= side * centre_side >= 0
    return inside


# --------------------------------------------------------------------------- user files
def _infer_task(y: np.ndarray, task: str, name: str) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Encode targets; `auto` treats non-float or few-valued integer targets as classes."""
    if task == "auto":
        if y.dtype.kind in "OUSb" or (y.dtype.kind in "iu" and len(np.unique(y)) <= 50):
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        elif y.dtype.kind == "f" and np.all(np.mod(y[np.isfinite(y)], 1) == 0) and len(np.unique(y)) <= 20:
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        else:
            task = "regression"
    if task == "regression":
        try:
            return y.astype("float32"), task, ()
        except (TypeError, ValueError):
            raise DataError(f"Dataset '{name}': task=regression needs numeric targets. Use dataset.task=multiclass "
                            f"for labels. Received: targets such as {y[:3].tolist()}") from None
    classes, encoded = np.unique(y.astype(str) if y.dtype.kind in "OUS" else y, return_inverse=True)
    if task == "binary" and len(classes) != 2:
        raise DataError(f"Dataset '{name}': task=binary needs exactly 2 classes. Use dataset.task=multiclass. "
                        f"Received: {len(classes)} classes {classes[:10].tolist()}")
    if len(classes) < 2:
        raise DataError(f"Dataset '{name}' has a single class in its target; expected at least 2. "
                        f"Received: classes={classes.tolist()}")
    return encoded.astype("int64"), task, tuple(str(c) for c in classes)


def _csv(cfg: dict, seed: int):
    from extf.data.tables import load_csv

    return load_csv(cfg, seed, _infer_task)


def _npz(cfg: dict, seed: int):
    path = Path(cfg["path"]).expanduser()
    if not path.is_file():
        raise DataError(f"NPZ file not found: expected a NumPy .npz archive. Check dataset.path (relative paths "
                        f"start at the working directory {Path.cwd()}). Received: dataset.path={cfg['path']!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            for key in (cfg["x_key"], cfg["y_key"]):
                if key not in keys:
                    raise DataError(f"Array {key!r} is not in {path.name}. Expected one of: {', '.join(keys)}; set "
                                    f"dataset.x_key / dataset.y_key. Received: {key!r}")
            x, y = archive[cfg["x_key"]], archive[cfg["y_key"]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a truncated or corrupt archive
        raise DataError(f"Could not read {str(path)!r} as a NumPy .npz archive ({e}). Save it with numpy.savez. "
                        f"Received: dataset.path={cfg['path']!r}") from None
    if len(x) != len(y):
        raise DataError(f"x and y in {path.name} have different lengths; expected one target per sample. "
                        f"Received: len(x)={len(x)}, len(y)={len(y)}")
    y, task, classes = _infer_task(y, cfg["task"], f"npz:{path.name}")
    modality = {2: "tabular", 3: "sequence", 4: "image"}.get(x.ndim)
    if modality is None:
        raise DataError(f"x in {path.name} must have 2 (tabular), 3 (sequence) or 4 (image) dimensions. "
                        f"Received: x.shape={x.shape}")
    return x.astype("float32"), y, Meta("npz", task, modality, x.shape[1:], classes)


def _image_dir(cfg: dict, seed: int) -> Splits:
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


LOADERS = {
    "digits": _digits,
    "iris": _sklearn("load_iris", "multiclass"),
    "wine": _sklearn("load_wine", "multiclass"),
    "breast_cancer": _sklearn("load_breast_cancer", "binary"),
    "sine": _sine,
    "nabiya": _nabiya,
    "shapes": _shapes,
    "csv": _csv,
    "npz": _npz,
}
FILE_LOADERS = {  # loaders of file datasets: they return Splits that stream
    "image_dir": _image_dir,
}
