"""The inputs a logged model is given by `extf predict` and `extf evaluate`: new samples read from a file (CSV, .npy,
a table's rows) and checked against the input shape the model takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from extf.data.rows import RowsError, model_inputs
from extf.data.tables import PARQUET_SUFFIXES
from extf.errors import DataError


def check_input_shape(model, data_shape, what: str) -> None:
    """`model`: a Keras model, or the input shape per sample logged with its study (checked before loading it)."""
    expected = tuple(model) if isinstance(model, (tuple, list)) else tuple(model.input_shape[1:])
    if tuple(data_shape) != expected:
        same_size = len(expected) > 1 and int(np.prod(expected)) == int(np.prod(data_shape))
        hint = (f" A CSV row is one flat sample: for this model save the samples as a .npy array of shape "
                f"(N, {', '.join(map(str, expected))}) (numpy.save, after x.reshape(-1, "
                f"{', '.join(map(str, expected))})) or pass a folder of images." if same_size else
                " Use data with the model's shape (e.g. the same features, in the same order, as in training).")
        raise DataError(f"The model takes inputs of shape {expected} per sample, but {what} has shape "
                        f"{tuple(data_shape)}.{hint} Received: input shape {tuple(data_shape)}")


def read_input(path_text: str, logged_dataset: dict, model_shape: tuple) -> np.ndarray:
    """A CSV (header row) or a .npy array as the float32 array the model takes (a folder of images streams:
    extf.data.images)."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"Prediction input not found: expected a .csv file, a .npy file or a folder of images. "
                        f"Received: input={path_text!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"Could not read {path.name} as a NumPy .npy array ({e}). Save it with numpy.save. "
                            f"Received: input={path_text!r}") from None
    elif suffix == ".csv":
        x = _read_csv(path, path_text, logged_dataset.get("feature_names"))
    else:
        raise DataError(f"Unsupported prediction input {path.name}: expected .csv, .npy or a folder of images. "
                        f"Received: input={path_text!r}")
    x = np.asarray(x, dtype="float32")
    if x.ndim == len(model_shape) and tuple(x.shape) == tuple(model_shape):
        x = x[np.newaxis]  # a single sample
    if x.ndim == len(model_shape) and len(model_shape) == 3 and model_shape[-1] == 1:
        x = x[..., np.newaxis]  # (n, h, w) grayscale images
    if not np.isfinite(x).all():
        raise DataError(f"{path.name} has NaN or infinite values; the model needs finite numbers. "
                        f"Received: {int((~np.isfinite(x)).sum())} bad value(s)")
    return x


def _read_csv(path: Path, path_text: str, names: list[str] | None) -> np.ndarray:
    """A CSV of numeric features; the training columns in the training order when the file has them all."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise DataError(f"Could not read {path.name} as CSV ({e}). Expected a header row and one row per "
                        f"sample. Received: input={path_text!r}") from None
    if names and all(n in df.columns for n in names):
        df = df[names]
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise DataError(f"Column(s) {non_numeric} of {path.name} are not numeric; the model takes numbers. "
                        f"Drop them or pass only the feature columns. Received: columns {list(df.columns)}")
    return df.to_numpy(dtype="float32")


def read_rows(path_text: str, table: dict) -> dict[str, np.ndarray]:
    """A table's raw rows (CSV or Parquet) as the columns its model takes; a column missing or unknown is refused."""
    import pandas as pd

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise DataError(f"Prediction input not found: expected a .csv or .parquet file of rows with the columns "
                        f"{[c['name'] for c in table['columns']]}. Received: input={path_text!r}")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    if not parquet and path.suffix.lower() not in (".csv", ".txt"):
        raise DataError(f"This model takes table rows: expected a .csv or .parquet file with a header row and the "
                        f"columns {[c['name'] for c in table['columns']]}. Received: input={path_text!r}")
    try:
        df = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise DataError(f"Could not read {path.name} as {'Parquet' if parquet else 'CSV'} ({e}). Expected a header "
                        f"row and one row per sample. Received: input={path_text!r}") from None
    try:
        return model_inputs(df, table, path.name)
    except RowsError as e:
        raise DataError(str(e)) from None
