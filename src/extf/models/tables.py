"""A table's preprocessing as layers of the model: one input per column, one feature vector out.

Numeric columns (together, as one vector): missing cells (NaN) -> the training split's mean (keras.ops.isnan /
where, serialized with the model), then standardized (Normalization with the training split's mean and variance),
plus a 0/1 missing-indicator for each column whose training split had missing cells. Category column: StringLookup over the training split's
vocabulary with one out-of-vocabulary bucket (values never seen in training), one-hot encoded up to
extf.data.tables.ONE_HOT_MAX categories, else a learned Embedding; a hashed column (dataset.hash_buckets): Hashing
into a fixed number of buckets + Embedding. Only built-in Keras layers and ops: the saved model loads with
safe_mode=True and takes raw rows (extf.data.rows).

Keras' FeatureSpace does the lookups and normalization too, but it does not impute: one missing cell makes its
Normalization's mean NaN, and every prediction with it.
"""

from __future__ import annotations

import re


def layer_name(column: str) -> str:
    """A column name as a layer name (letters, digits, _ . - only)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", column)


def table_inputs(spec: dict) -> dict:
    """{column: keras.Input} of the raw columns: float32 numbers (NaN when missing) or strings."""
    import keras

    return {c["name"]: keras.Input(shape=(1,), name=layer_name(c["name"]),
                                   dtype="float32" if c["kind"] == "numeric" else "string")
            for c in spec["columns"]}


def encode_table(inputs: dict, spec: dict):
    """The columns' encodings, concatenated into one feature vector per row. The numeric columns are imputed and
    standardized together (one vector of means): a few ops per step however many columns there are."""
    import keras
    import numpy as np
    from keras import ops

    parts = []
    numeric = [c for c in spec["columns"] if c["kind"] == "numeric"]
    if numeric:
        x = _joined([inputs[c["name"]] for c in numeric], "numeric_columns")
        missing = ops.isnan(x)
        means = np.asarray([c["mean"] for c in numeric], dtype="float32")
        x = ops.where(missing, means, x)
        if numeric[0].get("standardize", True):
            stds = np.asarray([c["std"] for c in numeric], dtype="float32")
            x = keras.layers.Normalization(mean=means, variance=stds**2, name="standardize")(x)
        parts.append(x)
        flagged = [c for c in numeric if c.get("missing_indicator")]
        if flagged:  # 1 where the cell was missing, for the columns whose training split had missing cells
            parts.append(ops.cast(ops.isnan(_joined([inputs[c["name"]] for c in flagged], "missing_columns")),
                                  "float32"))
    for col in spec["columns"]:
        x, name = inputs[col["name"]], layer_name(col["name"])
        if col["kind"] == "numeric":
            continue
        if col["encoding"] == "hash":
            index = keras.layers.Hashing(col["hash_bins"], name=f"hash_{name}")(x)
            parts.append(_embedded(index, col["hash_bins"], col["embedding_dim"], name))
        elif col["encoding"] == "one_hot":
            parts.append(keras.layers.StringLookup(vocabulary=col["vocabulary"], num_oov_indices=1,
                                                   output_mode="one_hot", name=f"lookup_{name}")(x))
        else:
            index = keras.layers.StringLookup(vocabulary=col["vocabulary"], num_oov_indices=1,
                                              name=f"lookup_{name}")(x)
            parts.append(_embedded(index, len(col["vocabulary"]) + 1, col["embedding_dim"], name))
    return _joined(parts, "table_features")


def _joined(tensors: list, name: str):
    import keras

    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate(name=name)(tensors)


def _embedded(index, n: int, dim: int, name: str):
    import keras

    vectors = keras.layers.Embedding(n, dim, name=f"embed_{name}")(index)  # (batch, 1, dim)
    return keras.layers.Reshape((dim,), name=f"embed_{name}_flat")(vectors)
