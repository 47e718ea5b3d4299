"""Raw table rows -> the columns a table model takes, and its outputs -> a predictions table.

A table model (a CSV or Parquet file with category columns or missing values) takes one input per feature column:
numbers as float32 (NaN where a cell is missing: the model imputes it) and categories as strings ("" where a cell is
missing). Everything that turns a user's rows into those inputs is here, in one place, used by training, by
`extf predict`, and by the logged MLflow model: this file is self-contained (pandas and numpy; Keras only to load a
model) and is shipped inside the MLflow model as its python_function loader (`_load_pyfunc`), so that
`mlflow models predict` and `mlflow models serve` take raw rows without extf installed.

`spec` is the table's description (Meta.extra["table"], dataset.json "table"): {"columns": [{"name", "kind":
"numeric" | "category", ...}], "target", "known_columns", "task", "class_names", "threshold"}.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

SPEC_FILE = "table.json"  # the spec, next to model.keras in the MLflow model's data folder
MISSING_CATEGORY = ""  # a missing category cell, as the model sees it (its own category if the training split had it)


class RowsError(ValueError):
    """Rows that do not fit the model: a column missing, an unknown column, text in a numeric column."""


def category_strings(values) -> np.ndarray:
    """A column's values as category strings: missing -> "", integral numbers without ".0" (a column read with a
    missing cell becomes float: 3.0 must stay the category "3"). Each distinct value is converted once."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object), dtype=object), use_na_sentinel=True)
    names = np.array([_category(v) for v in uniques] + [MISSING_CATEGORY], dtype=object)
    return names[codes]  # code -1 (missing) -> the last name


def _category(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def numeric_values(series: pd.Series, column: str, where: str) -> np.ndarray:
    """A column as float32 with NaN for missing cells; text that is not a number is refused, naming it."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float32").to_numpy()
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype="float32", na_value=np.nan)
    parsed = pd.to_numeric(series, errors="coerce")
    bad = series[parsed.isna() & series.notna()]
    if len(bad):
        examples = list(dict.fromkeys(map(str, bad.head(50))))[:3]
        raise RowsError(f"Column {column!r} of {where} must hold numbers (the model was trained on numbers there), "
                        f"but {len(bad)} cell(s) hold text. Leave a cell empty (or NA) for a missing value. "
                        f"Received: {column}={examples}")
    return parsed.to_numpy(dtype="float32", na_value=np.nan)


def check_columns(columns, spec: dict, where: str) -> None:
    """Every feature column the model takes must be there; a column the training file did not have is refused (the
    target and the columns training left out are ignored)."""
    present = [str(c) for c in columns]
    features = [c["name"] for c in spec["columns"]]
    missing = [c for c in features if c not in present]
    known = set(spec.get("known_columns") or features) | set(features) | {spec.get("target")}
    unknown = [c for c in present if c not in known]
    if missing:
        raise RowsError(f"{where} lacks column(s) {missing} that the model takes. Expected the feature columns "
                        f"{features} (a missing value is an empty cell or NA, not a missing column). "
                        f"Received: columns {present}")
    if unknown:
        raise RowsError(f"{where} has column(s) {unknown} that the training data did not have. Expected the feature "
                        f"columns {features}; drop the others. Received: columns {present}")


def model_inputs(df: pd.DataFrame, spec: dict, where: str = "the rows") -> dict[str, np.ndarray]:
    """The model's inputs for raw rows: {column: values} for every feature column, in the model's types."""
    check_columns(df.columns, spec, where)
    df = df.rename(columns=str)
    inputs = {}
    for col in spec["columns"]:
        name = col["name"]
        if col["kind"] == "numeric":
            inputs[name] = numeric_values(df[name], name, where)
        else:
            inputs[name] = category_strings(df[name].to_numpy(dtype=object))
    return inputs


def prediction_table(outputs: np.ndarray, task: str, class_names, threshold: float = 0.5) -> dict[str, list]:
    """Probabilities per class and the predicted label (classification), or the prediction (regression)."""
    names = list(class_names or [])
    if task == "regression":
        return {"prediction": np.ravel(outputs).tolist()}
    if task == "binary":
        p1 = np.ravel(outputs)
        index = (p1 >= threshold).astype(int)
        table = {f"prob_{names[0] if names else 0}": (1 - p1).tolist(), f"prob_{names[1] if names else 1}": p1.tolist()}
    else:
        index = np.argmax(outputs, axis=-1)
        table = {f"prob_{names[i] if names else i}": outputs[:, i].tolist() for i in range(outputs.shape[1])}
    table["class_index"] = index.tolist()
    table["label"] = [names[i] if names else str(i) for i in index]
    return table


class TableModel:
    """The MLflow python_function model of a table model: raw rows (a DataFrame, or records) in, a predictions
    table out."""

    def __init__(self, model, spec: dict):
        self.model = model
        self.spec = spec

    def predict(self, data, params=None):
        df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        inputs = model_inputs(df, self.spec, "the input")
        outputs = np.asarray(self.model.predict(inputs, batch_size=1024, verbose=0))
        table = prediction_table(outputs, self.spec["task"], self.spec.get("class_names"),
                                 float(self.spec.get("threshold", 0.5)))
        return pd.DataFrame(table, index=df.index)

    def get_raw_model(self):
        return self.model


def _load_pyfunc(path: str) -> TableModel:
    """mlflow.pyfunc's loader: `path` is the model's data folder (model.keras and table.json)."""
    import keras

    with open(os.path.join(path, SPEC_FILE), encoding="utf-8") as f:
        spec = json.load(f)
    model = keras.models.load_model(os.path.join(path, "model.keras"), safe_mode=True)
    return TableModel(model, spec)
