"""A dataset given as the project's own callable: `dataset._target_: myproj.data.load_data`.

The callable gets the dataset config's own keys as keyword arguments (as Hydra's instantiate would; extf's keys
`name`, `val_fraction`, `test_fraction` are not passed) and returns a dict:

    x, y              every sample (numpy arrays, same length): extf splits them, seeded, stratified for
                      classification, with dataset.val_fraction / dataset.test_fraction
    train, val, test  or the project's own splits, each an (x, y) pair, or each an unbatched tf.data.Dataset of
                      (x, y) samples (streamed: batched, prefetched and shuffled by extf; see `_streamed`)
    task              binary | multiclass | regression                                   (required)
    modality          tabular | image | sequence (default: from x's dimensions: 2 tabular, 3 sequence, 4 image)
    class_names       classification: the class of each label 0..n-1 (default: the sorted labels as text)
    ordered           true: samples are in time order (chronological splits)                    (default: false)
    extra             a dict the model receives as meta.extra, e.g. {"rescale": 1/16} (extf's models apply it)
"""

from __future__ import annotations

import numpy as np

from extf.config.instantiate import call_user, resolve
from extf.data.splits import MODALITIES, DatasetSplit, Meta, Split, Splits, check_finite, make_splits
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
                             f"train, val and test as (x, y) pairs or unbatched tf.data.Dataset of (x, y)) and "
                             f"task: binary, multiclass or regression (see docs/own-project.md). Received: "
                             f"{received}")

    if not isinstance(result, dict):
        kind = type(result).__name__
        raise bad(f"a {kind} without metadata" if isinstance(result, tuple) else f"a {kind}", f"{kind}")
    unknown = sorted(set(map(str, result)) - set(KEYS))
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}", f"keys {sorted(map(str, result))}")
    task = result.get("task")
    if task not in TASKS:
        raise bad("no task" if task is None else f"an unknown task {task!r}", f"task={task!r}")
    if any(_is_dataset(result.get(k)) for k in ("x", "train", "val", "test")):
        return _streamed(result, cfg, task, bad)
    presplit = all(k in result for k in ("train", "val", "test"))
    if not presplit and not ("x" in result and "y" in result):
        raise bad("neither x and y nor train, val and test", f"keys {sorted(map(str, result))}")
    parts = _array_parts(result, presplit, bad)
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


def _array_parts(result: dict, presplit: bool, bad) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{part: (x, y)} of the arrays a dataset function returned: train, val and test, or all of it."""
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
    return parts


def _is_dataset(value) -> bool:
    """A tf.data.Dataset, recognised without importing TensorFlow for a project that returns arrays."""
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _streamed(result: dict, cfg: dict, task: str, bad) -> Splits:
    """train, val and test given as tf.data.Dataset: checked (unbatched (x, y) samples of one known shape, a finite
    length), the labels cast to what extf's models take, the test labels read once (for the metrics)."""
    import tensorflow as tf

    if not all(_is_dataset(result.get(k)) for k in ("train", "val", "test")):
        given = {k: type(result[k]).__name__ for k in ("x", "train", "val", "test") if k in result}
        raise bad("a tf.data.Dataset but not train, val and test all as tf.data.Dataset (extf cannot split a "
                  "stream: split it yourself; tf.data.Dataset.from_tensor_slices((x, y)) turns arrays into one)",
                  f"{given}")
    parts, shape = {}, None
    for part in ("train", "val", "test"):
        ds, x_spec = _checked_stream(result[part], part, task, bad)
        if shape is not None and tuple(x_spec.shape) != shape:
            raise bad(f"{part} inputs of shape {tuple(x_spec.shape)} beside train's {shape}", f"{part} element_spec="
                      f"{result[part].element_spec}")
        shape = tuple(x_spec.shape)
        size = int(ds.cardinality())
        if size == int(tf.data.INFINITE_CARDINALITY):
            raise bad(f"an endless {part} (a repeated dataset); extf runs the epochs itself", f"{part} cardinality="
                      "infinite")
        if size == int(tf.data.UNKNOWN_CARDINALITY):  # after filter(), from_generator(): counted once
            size = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
        if size == 0:
            raise bad(f"no samples in {part}", "0 samples")
        parts[part] = (ds, size)
    offsets = np.cumsum([0] + [size for _, size in parts.values()])
    splits = {p: DatasetSplit(ds, size, np.arange(offsets[i], offsets[i] + size))
              for i, (p, (ds, size)) in enumerate(parts.items())}
    class_names = _stream_class_names(splits["test"].y, task, result.get("class_names"), bad)
    modality = result.get("modality") or {1: "tabular", 2: "sequence", 3: "image"}.get(len(shape))
    if modality not in MODALITIES:
        raise bad(f"no modality for inputs of shape {shape}", f"modality={result.get('modality')!r}")
    extra = result.get("extra") or {}
    if not isinstance(extra, dict):
        raise bad("an extra that is not a dict", f"extra={type(extra).__name__}")
    meta = Meta(str(cfg["name"]), task, modality, shape, class_names, ordered=bool(result.get("ordered", False)),
                extra=dict(extra))
    return Splits(splits["train"], splits["val"], splits["test"], meta)


def _checked_stream(ds, part: str, task: str, bad):
    """(the dataset as extf's models take it: float32 inputs, scalar labels of the task's type, its input spec)."""
    import tensorflow as tf

    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise bad(f"{part} as a tf.data.Dataset that does not yield (x, y) pairs of tensors", f"{part} element_spec="
                  f"{spec}")
    x_spec, y_spec = spec
    if y_spec.shape.rank is None or tuple(y_spec.shape) not in ((), (1,)):
        raise bad(f"{part} as a batched tf.data.Dataset (its labels have shape {tuple(y_spec.shape or ())}, expected "
                  f"one label per element); return it unbatched (dataset.unbatch()): extf batches it with "
                  f"trainer.batch_size", f"{part} element_spec={spec}")
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer or x_spec.dtype.is_bool):
        raise bad(f"{part} inputs of type {x_spec.dtype.name}, expected numbers (a table of category columns: use "
                  f"dataset=csv)", f"{part} element_spec={spec}")
    if not x_spec.shape.is_fully_defined():
        raise bad(f"{part} inputs of unknown shape {x_spec.shape} (give them one with tf.ensure_shape in a map)",
                  f"{part} element_spec={spec}")
    if not (y_spec.dtype.is_integer or y_spec.dtype.is_bool or (task == "regression" and y_spec.dtype.is_floating)):
        what = "numbers" if task == "regression" else "class indices 0..n-1 (integers; give their class_names)"
        raise bad(f"{part} labels of type {y_spec.dtype.name} for task {task}, expected {what}", f"{part} "
                  f"element_spec={spec}")
    y_dtype = tf.float32 if task == "regression" else tf.int64
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(tf.reshape(y, []), y_dtype)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds, x_spec


def _stream_class_names(test_y: np.ndarray, task: str, names, bad) -> tuple[str, ...]:
    """The class names of a streamed classification: given, or the labels 0..(the test split's largest) as text."""
    if task == "regression":
        return ()
    if names is not None:
        names = tuple(str(n) for n in names)
    else:
        names = tuple(str(i) for i in range(max(int(test_y.max()) + 1, 2)))
    if test_y.min() < 0 or test_y.max() >= len(names):
        raise bad(f"test labels outside 0..{len(names) - 1} for its {len(names)} class_names",
                  f"labels {sorted(set(np.unique(test_y).tolist()))[:10]}")
    if len(names) < 2 or (task == "binary" and len(names) != 2):
        raise bad(f"{len(names)} class(es) for task {task}", f"class_names={list(names)[:10]}")
    return names


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
