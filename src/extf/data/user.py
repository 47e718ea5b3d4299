"""A dataset given as the project's own callable: `dataset._target_: myproj.data.load_data`.

The callable gets the dataset config's own keys as keyword arguments (as Hydra's instantiate would; extf's keys
`name`, `val_fraction`, `test_fraction` are not passed) and returns a dict:

    x, y              every sample (numpy arrays, same length): extf splits them, seeded, stratified for
                      classification, with dataset.val_fraction / dataset.test_fraction
    train, val, test  or the project's own splits, each an (x, y) pair
    task              binary | multiclass | regression                                   (required)
    modality          tabular | image | sequence (default: from x's dimensions: 2 tabular, 3 sequence, 4 image)
    class_names       classification: the class of each label 0..n-1 (default: the sorted labels as text)
    ordered           true: samples are in time order (chronological splits)                    (default: false)
    extra             a dict the model receives as meta.extra, e.g. {"rescale": 1/16} (extf's models apply it)
"""

from __future__ import annotations

import numpy as np

from extf.config.instantiate import call_user, resolve
from extf.data.splits import MODALITIES, Meta, Split, Splits, check_finite, make_splits
from extf.errors import UserCodeError

TASKS = ("binary", "multiclass", "regression")
EXTF_KEYS = ("_target_", "name", "val_fraction", "test_fraction")
KEYS = ("x", "y", "train", "val", "test", "task", "modality", "class_names", "ordered", "extra")


def load(cfg: dict, seed: int, allow_targets=()) -> Splits:
    target, key = str(cfg["_target_"]), "dataset._target_"
    fn = resolve(target, key, allow_targets)
    result = call_user(fn, target, key, **{k: v for k, v in cfg.items() if k not in EXTF_KEYS})

    def bad(what: str, received: str) -> UserCodeError:
        return UserCodeError(f"the project's {target} ({key}) returned {what}. Expected a dict with x and y (or "
                             f"train, val and test as (x, y) pairs) and task: binary, multiclass or regression "
                             f"(see docs/own-project.md). Received: {received}")

    if not isinstance(result, dict):
        kind = type(result).__name__
        raise bad(f"a {kind} without metadata" if isinstance(result, tuple) else f"a {kind}", f"{kind}")
    unknown = sorted(set(map(str, result)) - set(KEYS))
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}", f"keys {sorted(map(str, result))}")
    task = result.get("task")
    if task not in TASKS:
        raise bad("no task" if task is None else f"an unknown task {task!r}", f"task={task!r}")
    presplit = all(k in result for k in ("train", "val", "test"))
    if not presplit and not ("x" in result and "y" in result):
        raise bad("neither x and y nor train, val and test", f"keys {sorted(map(str, result))}")
    parts = {}
    for part in ("train", "val", "test") if presplit else ("all",):
        pair = result[part] if presplit else (result["x"], result["y"])
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise bad(f"{part} that is not an (x, y) pair", f"{part}={type(pair).__name__}")
        x, y = np.asarray(pair[0]), np.asarray(pair[1])
        if len(x) != len(y):
            raise bad(f"x and y of different lengths{'' if part == 'all' else ' in ' + part}",
                      f"len(x)={len(x)}, len(y)={len(y)}")
        if len(x) == 0:
            raise bad(f"no samples{'' if part == 'all' else ' in ' + part}", "len(x)=0")
        parts[part] = (x, y)
    all_y = np.concatenate([y for _, y in parts.values()])
    y_codes, class_names = _labels(all_y, task, result.get("class_names"), bad)
    start = 0
    for part, (x, y) in parts.items():
        parts[part] = (_features(x), y_codes[start:start + len(y)])
        start += len(y)
    x0 = next(iter(parts.values()))[0]
    modality = result.get("modality") or {2: "tabular", 3: "sequence", 4: "image"}.get(x0.ndim)
    if modality not in MODALITIES:
        raise bad(f"no modality for inputs of shape {x0.shape[1:]}", f"modality={result.get('modality')!r}")
    extra = result.get("extra") or {}
    if not isinstance(extra, dict):
        raise bad("an extra that is not a dict", f"extra={type(extra).__name__}")
    meta = Meta(str(cfg["name"]), task, modality, tuple(int(d) for d in x0.shape[1:]), class_names,
                ordered=bool(result.get("ordered", False)), extra=dict(extra))
    if not presplit:
        x, y = parts["all"]
        return make_splits(x, y, meta, cfg["val_fraction"], cfg["test_fraction"], seed)
    splits, offset = {}, 0
    for part, (x, y) in parts.items():
        if x.shape[1:] != x0.shape[1:]:
            raise bad(f"{part} inputs of shape {x.shape[1:]} beside train's {x0.shape[1:]}", f"{part} x.shape="
                      f"{x.shape}")
        check_finite(x, y, meta.name)
        splits[part] = Split(x, y, np.arange(offset, offset + len(x)))
        offset += len(x)
    return Splits(splits["train"], splits["val"], splits["test"], meta)


def _features(x: np.ndarray) -> np.ndarray:
    return x.astype("float32") if np.issubdtype(x.dtype, np.number) and x.dtype != np.float32 else x


def _labels(y: np.ndarray, task: str, names, bad) -> tuple[np.ndarray, tuple[str, ...]]:
    """Targets as extf's models take them: class indices 0..n-1 for classification, floats for regression."""
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise bad("non-numeric targets for task regression", f"y.dtype={y.dtype}")
        return y.astype("float32"), ()
    if names is not None:
        names = tuple(str(n) for n in names)
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= len(names):
            raise bad(f"labels outside 0..{len(names) - 1} for its {len(names)} class_names",
                      f"labels {sorted(set(np.unique(y).tolist()))[:10]}")
        codes = y.astype("int64")
    else:
        values, codes = np.unique(y, return_inverse=True)
        names = tuple(str(v) for v in values)
    if len(names) < 2 or (task == "binary" and len(names) != 2):
        raise bad(f"{len(names)} class(es) for task {task}", f"class_names={list(names)[:10]}")
    return codes.astype("int64").reshape(y.shape), names
