"""Users' tables as they have them (CSV, Parquet): category columns, missing cells, a string target.

`read_table` reads the file; `load_csv` checks the target and types every feature column. A table of finite numbers
only stays what it always was (one float32 array, standardized by the model); any other table goes to the model as
its raw columns ({column: values}, see extf.data.rows), and `fit_statistics` adds, from the training split only,
what the model's preprocessing layers need: each numeric column's mean and standard deviation (missing cells are
imputed with the mean, plus a missing-indicator when the training split had missing cells there) and each category
column's vocabulary (values seen only later go to an out-of-vocabulary bucket).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from extf.data.rows import category_strings
from extf.data.splits import Meta, Split, Splits
from extf.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
ONE_HOT_MAX = 32  # categories up to this many are one-hot encoded; more get a learned embedding


def read_table(cfg: dict):
    """The file `dataset.path` as a DataFrame: Parquet by its suffix, otherwise delimited text with a header row."""
    import pandas as pd

    path = Path(cfg["path"]).expanduser()
    if not path.is_file():
        raise DataError(f"CSV file not found: expected a readable file with a header row. Check dataset.path "
                        f"(relative paths start at the working directory {Path.cwd()}). Received: "
                        f"dataset.path={cfg['path']!r}")
    na_values = list(cfg.get("na_values") or [])
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            df = pd.read_parquet(path)
            if na_values:
                df = df.replace(na_values, np.nan)
        else:
            df = pd.read_csv(path, sep=cfg["delimiter"], na_values=na_values or None)
    except Exception as e:  # pandas raises many types for unreadable files
        kind = "Parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "CSV"
        raise DataError(f"Could not read {kind} file {str(path)!r}: {e}. Expected a delimited text file with a "
                        f"header row (check dataset.delimiter) or a .parquet file. Received: "
                        f"dataset.delimiter={cfg['delimiter']!r}") from None
    if df.empty:  # a header row only: its columns would look non-numeric (dtype object)
        raise DataError(f"CSV file {path.name} has no data rows; expected a header row, then one row per sample. "
                        f"Received: columns {list(map(str, df.columns))} and 0 rows")
    df.columns = [str(c) for c in df.columns]
    return df, path


def load_csv(cfg: dict, seed: int, infer_task):
    """The loader of dataset=csv: (x, y, meta); x is an array for a table of finite numbers, else its columns."""
    df, path = read_table(cfg)
    where = path.name
    target = cfg["target"]
    if target not in df.columns:
        raise DataError(f"Target column {target!r} is not in {where}. Expected one of its columns: "
                        f"{', '.join(df.columns)}. Set dataset.target. Received: dataset.target={target!r}")
    df = _rows_with_a_target(df, target, where)
    features = _feature_columns(df, cfg, where)
    kinds = _column_kinds(df, features, cfg, where)
    features = _drop_uninformative(df, features, where)
    if not features:
        raise DataError(f"{where} has no feature column left (every one is constant or empty); expected at least "
                        f"one column that varies besides the target. Received: columns {list(df.columns)}")
    y, task, classes = infer_task(df[target].to_numpy(), cfg["task"], f"csv:{where}")
    numbers_only = all(kinds[c] == "numeric" for c in features) and not cfg.get("categorical")
    if numbers_only:
        x = df[features].to_numpy(dtype="float64", na_value=np.nan)
        if np.isfinite(x).all():  # as before: one array, standardized by the model's Normalization layer
            meta = Meta("csv", task, "tabular", (len(features),), classes, extra={"feature_names": features})
            return x.astype("float32"), y, meta
    _check_cardinality(df, [c for c in features if kinds[c] == "category"], cfg, where)
    x = {}
    for c in features:
        if kinds[c] == "numeric":
            x[c] = df[c].astype("float64").to_numpy(dtype="float32", na_value=np.nan)
        else:
            x[c] = category_strings(df[c].to_numpy(dtype=object))
    spec = {"columns": [{"name": c, "kind": kinds[c]} for c in features], "target": target,
            "known_columns": list(df.columns), "source": where}
    meta = Meta("csv", task, "tabular", (len(features),), classes,
                extra={"feature_names": features, "table": spec})
    return x, y, meta


def _rows_with_a_target(df, target: str, where: str):
    """Rows whose target cell is missing cannot be learned from: they are left out, with a line saying so."""
    missing = df[target].isna().to_numpy()
    if missing.all():
        raise DataError(f"Target column {target!r} in {where} has no values: every one of its {len(df)} cells is "
                        f"missing. Expected a value in (most) rows; choose another column with dataset.target. "
                        f"Received: dataset.target={target!r}")
    if missing.any():
        rows = np.flatnonzero(missing)
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        print(f"{where}: left out {len(rows)} row(s) whose target {target!r} is missing (rows {shown})")
        df = df.loc[~missing].reset_index(drop=True)
    return df


def _feature_columns(df, cfg: dict, where: str) -> list[str]:
    target = cfg["target"]
    drop = [str(c) for c in (cfg.get("drop") or [])]
    features = [str(c) for c in (cfg.get("features") or [c for c in df.columns if c != target])]
    listed = [*features, *drop, *(cfg.get("categorical") or []), *(cfg.get("hash_buckets") or {})]
    missing = [c for c in dict.fromkeys(listed) if c not in df.columns]
    if missing:
        raise DataError(f"Feature column(s) {missing} are not in {where}. Expected columns among: "
                        f"{', '.join(df.columns)}. Check dataset.features, dataset.drop, dataset.categorical and "
                        f"dataset.hash_buckets. Received: dataset.features={cfg.get('features')}")
    return [c for c in features if c not in drop and c != target]


def _column_kinds(df, features: list[str], cfg: dict, where: str) -> dict[str, str]:
    """numeric or category for each column: numbers are numeric, text is a category, and so is every column listed
    in dataset.categorical or dataset.hash_buckets. A column of numbers and text is refused, with both shown."""
    import pandas as pd

    listed = set(cfg.get("categorical") or []) | set(cfg.get("hash_buckets") or {})
    kinds = {}
    for c in features:
        series = df[c]
        if c in listed:
            kinds[c] = "category"
        elif pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            kinds[c] = "numeric"
        else:
            counts = series.dropna().astype(str).value_counts(sort=False)  # each distinct value parsed once
            is_number = pd.to_numeric(pd.Series(counts.index), errors="coerce").notna().to_numpy()
            n_numbers, n_present = int(counts[is_number].sum()), int(counts.sum())
            if n_numbers == 0:
                kinds[c] = "category"
            elif n_numbers == n_present:
                kinds[c] = "numeric"
            else:
                numbers = list(counts.index[is_number][:3])
                text = list(counts.index[~is_number][:3])
                raise DataError(
                    f"Column {c!r} of {where} mixes numbers and text ({n_numbers} numbers such as {numbers}, "
                    f"{n_present - n_numbers} text cells such as {text}); expected one type per column. If the "
                    f"text marks missing values, name it in dataset.na_values (e.g. dataset.na_values=[{text[0]}]); "
                    f"if the column is a category, list it in dataset.categorical=[{c}]; or leave it out with "
                    f"dataset.drop=[{c}]. Received: {c}={numbers[:2] + text[:2]}")
    return kinds


def _drop_uninformative(df, features: list[str], where: str) -> list[str]:
    """A column with no value, or one value and no missing cell, says nothing: left out, with a line saying so."""
    kept = []
    for c in features:
        series = df[c]
        values = series.dropna()
        if values.empty:
            print(f"{where}: left out column {c!r}: every cell is missing")
        elif values.nunique() == 1 and len(values) == len(series):
            value = values.iloc[0]
            value = value.item() if hasattr(value, "item") else value
            print(f"{where}: left out column {c!r}: it has the same value ({value!r}) in every row")
        else:
            kept.append(c)
    return kept


def _check_cardinality(df, categories: list[str], cfg: dict, where: str) -> None:
    """A category column with very many values (an id, a free-text field) would give the model a vocabulary as
    large as the data; it must be hashed into a fixed number of buckets or left out."""
    limit = int(cfg.get("max_categories") or 0)
    hashed = cfg.get("hash_buckets") or {}
    for c, bins in hashed.items():
        if int(bins) < 2:
            raise DataError(f"dataset.hash_buckets.{c} must be a number of buckets of at least 2 (e.g. 1024; more "
                            f"buckets, fewer values sharing one). Received: dataset.hash_buckets.{c}={bins}")
    for c in categories:
        n = int(df[c].nunique(dropna=True))
        if limit and n > limit and c not in hashed:
            raise DataError(f"Category column {c!r} of {where} has {n} distinct values, more than "
                            f"dataset.max_categories={limit}: a vocabulary that large overfits and bloats the model "
                            f"(an identifier or free text?). Leave it out with dataset.drop=[{c}], or hash it into "
                            f"a fixed number of buckets with dataset.hash_buckets={{{c}: 1024}} (a learned embedding "
                            f"per bucket), or raise dataset.max_categories. Received: {n} distinct values in {c!r}")


# --------------------------------------------------------------------------- the training split's statistics
def fit_statistics(splits: Splits, cfg: dict) -> Splits:
    """The table spec with what the model's preprocessing needs, from the training split only."""
    spec = splits.meta.extra["table"]
    train = splits.train.x
    hashed = cfg.get("hash_buckets") or {}
    standardize = bool(cfg.get("standardize", True))
    columns = []
    for col in spec["columns"]:
        name, values = col["name"], train[col["name"]]
        if col["kind"] == "numeric":
            present = values[~np.isnan(values)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 1.0
            columns.append({**col, "mean": mean, "std": std if std > 0 else 1.0, "standardize": standardize,
                            "missing_indicator": bool(present.size < values.size)})
        elif name in hashed:
            bins = int(hashed[name])
            columns.append({**col, "encoding": "hash", "hash_bins": bins, "embedding_dim": embedding_dim(bins)})
        else:
            found, counts = np.unique(values.astype(str), return_counts=True)
            order = sorted(range(len(found)), key=lambda i: (-counts[i], found[i]))  # most frequent first
            vocabulary = [str(found[i]) for i in order]
            encoding = "one_hot" if len(vocabulary) <= ONE_HOT_MAX else "embedding"
            columns.append({**col, "encoding": encoding, "vocabulary": vocabulary,
                            **({"embedding_dim": embedding_dim(len(vocabulary) + 1)} if encoding == "embedding"
                               else {})})
    meta = replace(splits.meta, extra={**splits.meta.extra, "table": {**spec, "columns": columns}})
    return Splits(splits.train, splits.val, splits.test, meta)


def embedding_dim(n_categories: int) -> int:
    """A learned embedding's width for n categories (fast.ai's rule of thumb), between 2 and 32."""
    return int(min(32, max(2, round(1.6 * n_categories**0.56))))


def head_frame(split: Split, n: int, spec: dict):
    """The first `n` rows of a split as the raw table rows the logged model takes (an input example)."""
    import pandas as pd

    return pd.DataFrame({c["name"]: np.where(split.x[c["name"]][:n] == "", None, split.x[c["name"]][:n])
                         if c["kind"] == "category" else split.x[c["name"]][:n].astype("float64")
                         for c in spec["columns"]})
