"""Train / validation / test splits with the metadata models and metrics need."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from extf.data.images import ImageReader, decode_errors_named
from extf.errors import ConfigError, DataError

TASKS = ("binary", "multiclass", "regression", "segmentation", "reconstruction")
MODALITIES = ("tabular", "image", "sequence")


@dataclass(frozen=True)
class Meta:
    name: str
    task: str  # binary | multiclass | regression | segmentation (y: a class per pixel) | reconstruction (y: x)
    modality: str  # tabular | image | sequence (sequence is orthogonal to the task: sine regresses, nabiya classifies)
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()
    ordered: bool = False  # True: samples are in time order (chronological splits, no shuffling for stateful RNNs)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class Split:
    """A split held in memory (arrays, or a table's columns): `dataset()` is what Keras gets, batched from them."""

    x: np.ndarray | dict  # an array, or a table's raw columns {column: values} (extf.data.tables)
    y: np.ndarray
    index: np.ndarray  # row numbers in the loaded dataset, for tracing samples back

    def __len__(self) -> int:
        return len(self.y)

    def dataset(self, batch_size: int, shuffle: bool = False, seed: int | None = None):
        """(inputs, labels) batches as a prefetched tf.data pipeline; in row order unless `shuffle` (seeded, a new
        order each epoch)."""
        return array_dataset(self.x, self.y, batch_size, shuffle=shuffle, seed=seed)

    def inputs(self, n: int) -> np.ndarray | dict:
        """The first `n` inputs (an input example for the logged model)."""
        return _take(self.x, np.arange(min(n, len(self))))

    def read_errors(self, skip_hint: str | None = None):
        """Nothing is decoded while an array split is read: no error to name."""
        return nullcontext()


@dataclass(frozen=True)
class FileSplit:
    """A split that streams its inputs from files: in memory are only the file paths and the labels (known from
    the file list without decoding), so memory does not grow with the data."""

    files: tuple[str, ...]
    y: np.ndarray
    index: np.ndarray  # positions in the loaded file list
    reader: ImageReader

    def __len__(self) -> int:
        return len(self.files)

    def dataset(self, batch_size: int, shuffle: bool = False, seed: int | None = None):
        """(inputs, labels) batches as a prefetched tf.data pipeline; in file order unless `shuffle` (seeded)."""
        return self.reader.dataset(self.files, self.y, batch_size, shuffle=shuffle, seed=seed)

    def inputs(self, n: int) -> np.ndarray:
        return self.reader.read(list(self.files[:n]))

    def read_errors(self, skip_hint: str | None = None):
        """A context in which TensorFlow's failure to decode one of the files becomes an error naming it."""
        return decode_errors_named(self.files, skip_hint)


@dataclass(frozen=True)
class DatasetSplit:
    """A split given as an unbatched `tf.data.Dataset` of (input, label) pairs (a project's own loader): batched and
    prefetched here, shuffled (seeded) for training; its own order is kept otherwise, so it must not reshuffle."""

    data: object  # tf.data.Dataset, unbatched
    size: int
    index: np.ndarray  # positions in the concatenation train, val, test

    def __len__(self) -> int:
        return self.size

    def dataset(self, batch_size: int, shuffle: bool = False, seed: int | None = None):
        """(inputs, labels) batches; shuffled through a buffer of up to SHUFFLE_BUFFER samples when `shuffle`."""
        import tensorflow as tf

        ds = self.data
        if shuffle:
            ds = ds.shuffle(min(self.size, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=self.size % batch_size == 0).prefetch(tf.data.AUTOTUNE)

    @cached_property
    def y(self) -> np.ndarray:
        """The labels in order, read from the dataset once (evaluation needs them beside the outputs)."""
        labels = [np.asarray(b) for b in self.data.map(lambda x, y: y).batch(4096)]
        return np.concatenate(labels) if labels else np.zeros(0)

    def inputs(self, n: int) -> np.ndarray:
        batch = next(iter(self.data.map(lambda x, y: x).batch(max(1, n))), None)
        return np.asarray(batch)[:n]

    def read_errors(self, skip_hint: str | None = None):
        """The project's pipeline reports its own errors."""
        return nullcontext()


SHUFFLE_BUFFER = 10_000  # samples of a project's tf.data split held for shuffling (arrays shuffle their row numbers)
AnySplit = Split | FileSplit | DatasetSplit


@dataclass(frozen=True)
class Splits:
    train: AnySplit
    val: AnySplit
    test: AnySplit
    meta: Meta


def array_dataset(x, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int | None = None):
    """Batches of rows of `x` (an array or a dict of columns) and `y` as a prefetched tf.data pipeline. The row
    numbers are shuffled (seeded, each epoch anew) and batched, then each batch is gathered at once: no per-sample
    work. The arrays become tensors once per pipeline; they are in memory already, so there is nothing to cache.
    When `batch_size` divides the rows, the batches have a static size (dropping no remainder): a stateful RNN,
    whose batch size is fixed, needs it."""
    import tensorflow as tf

    n = len(y)
    tensors = ({k: tf.constant(v) for k, v in x.items()} if isinstance(x, dict) else tf.constant(x), tf.constant(y))
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def rows(i):
        return tf.nest.map_structure(lambda t: tf.gather(t, i), tensors)

    ds = ds.batch(batch_size, drop_remainder=n % batch_size == 0).map(rows, num_parallel_calls=tf.data.AUTOTUNE,
                                                                      deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def check_finite(x: np.ndarray, y: np.ndarray, name: str) -> None:
    """Refuse NaN / infinite values with the count and first position, before any training."""
    for label, arr in (("features", x), ("targets", y)):
        if np.issubdtype(arr.dtype, np.number):
            bad = ~np.isfinite(arr)
            if bad.any():
                first = np.argwhere(bad)[0].tolist()
                raise DataError(f"Dataset '{name}' has {int(bad.sum())} NaN or infinite value(s) in its {label}; "
                                f"expected finite numbers. Clean or impute them before training. Received: first "
                                f"bad value at index {first}")


def make_splits(x: np.ndarray, y: np.ndarray, meta: Meta, val_fraction: float, test_fraction: float, seed: int,
                standardize: bool = False) -> Splits:
    """Split into train / validation / test: seeded, stratified for classification, chronological when
    `meta.ordered`. Segmentation and regression splits are random (a mask or a value has no single class)."""
    check_finite(x if isinstance(x, np.ndarray) else np.zeros(1), y, meta.name)  # a table's model imputes
    train_idx, val_idx, test_idx = split_indices(y, meta, val_fraction, test_fraction, seed)
    train, val, test = (Split(_take(x, i), y[i], i) for i in (train_idx, val_idx, test_idx))
    if standardize and isinstance(x, np.ndarray) and x.ndim == 2:
        # the statistics of the training split only; the model applies them (a Normalization layer), so a saved
        # model takes raw features, as `extf predict` and `mlflow models predict` give it
        mean = train.x.mean(axis=0)
        std = train.x.std(axis=0)
        std[std == 0] = 1.0
        meta = replace(meta, extra={**meta.extra, "feature_mean": mean.tolist(), "feature_std": std.tolist()})
    return Splits(train, val, test, meta)


def make_file_splits(files: list, y: np.ndarray, meta: Meta, reader: ImageReader, val_fraction: float,
                     test_fraction: float, seed: int) -> Splits:
    """The same split as `make_splits`, of a list of files with a label each: the files stream when used."""
    train_idx, val_idx, test_idx = split_indices(y, meta, val_fraction, test_fraction, seed)
    names = np.asarray([str(f) for f in files], dtype=object)
    train, val, test = (FileSplit(tuple(names[i]), y[i], i, reader) for i in (train_idx, val_idx, test_idx))
    return Splits(train, val, test, meta)


def split_indices(y: np.ndarray, meta: Meta, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row numbers of the train / validation / test splits of `len(y)` samples (see `make_splits`)."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if n - n_test - n_val < 1 or n_test < 1 or n_val < 1:
        raise DataError(f"Dataset '{meta.name}' has too few samples ({n}) for a train / validation / test split with "
                        f"val_fraction={val_fraction} and test_fraction={test_fraction}; each split needs at least one "
                        f"sample. Use more data or other fractions. Received: n_samples={n}")
    if meta.task not in TASKS:
        raise DataError(f"Dataset '{meta.name}' declares an unknown task. Expected one of: {', '.join(TASKS)}. "
                        f"Received: task={meta.task!r}")
    idx = np.arange(n)
    if meta.ordered:
        return idx[: n - n_val - n_test], idx[n - n_val - n_test: n - n_test], idx[n - n_test:]
    classify = meta.task in ("binary", "multiclass")
    strat = y if classify and _stratifiable(y, n_test, n_val) else None
    rest_idx, test_idx = train_test_split(idx, test_size=n_test, random_state=seed, stratify=strat)
    strat_rest = y[rest_idx] if strat is not None else None
    train_idx, val_idx = train_test_split(rest_idx, test_size=n_val, random_state=seed, stratify=strat_rest)
    return train_idx, val_idx, test_idx


def _take(x, index: np.ndarray):
    """Rows `index` of an array or of a table's columns."""
    return {k: v[index] for k, v in x.items()} if isinstance(x, dict) else x[index]


def _stratifiable(y: np.ndarray, n_test: int, n_val: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    n_classes = len(counts)
    return counts.min() >= 3 and n_test >= n_classes and n_val >= n_classes


def model_scale(x: np.ndarray, extra: dict) -> np.ndarray:
    """`x` as the model sees it after its preprocessing layers (`extf.models.preprocessing`: the dataset's rescale,
    then the training split's standardization)."""
    x = np.asarray(x, dtype="float32")
    if "rescale" in extra:
        x = x * np.float32(extra["rescale"])
    if "feature_mean" in extra:
        x = (x - np.asarray(extra["feature_mean"], dtype="float32")) / np.asarray(extra["feature_std"], dtype="float32")
    return x.astype("float32")


def reconstruction_splits(splits: Splits) -> Splits:
    """The same samples with each input as its own target (task `reconstruction`), for models that reconstruct
    their input. The model rescales / standardizes raw inputs itself, so the targets are the inputs on that
    internal scale: the scale of its output. The labels are dropped; any dataset works, whatever its task."""
    meta = splits.meta
    if not isinstance(splits.train, Split):
        raise ConfigError(f"model=autoencoder reconstructs in-memory datasets only: dataset '{meta.name}' streams "
                          f"its samples (from files or a tf.data pipeline), and an autoencoder's targets (the inputs "
                          f"themselves) would have to be held in memory. Use model=cnn to classify the images, or "
                          f"save a sample of them as a .npz (dataset=npz) to reconstruct it. Received: "
                          f"model.name='autoencoder'")
    parts = {}
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        parts[name] = Split(split.x, model_scale(split.x, meta.extra), split.index)
    train_y = parts["train"].y
    # a sigmoid output can reach the targets only when they lie in [0, 1] (digits rescaled by 1/16, shapes)
    unit_range = bool(train_y.min() >= 0.0 and train_y.max() <= 1.0)
    meta = replace(meta, task="reconstruction", class_names=(),
                   extra={**meta.extra, "source_task": meta.task, "target_in_unit_range": unit_range})
    return Splits(parts["train"], parts["val"], parts["test"], meta)
