"""A table's preprocessing as layers of the model: one input per column, one feature vector out.

Numeric column: missing cells (NaN) -> the training split's mean (keras.ops.isnan / where, serialized with the
model), then standardized (Normalization with the training split's mean and variance), plus a 0/1 missing-indicator
when the training split had missing cells in that column. Category column: StringLookup over the training split's
vocabulary with one out-of-vocabulary bucket (values never seen in training), one-hot encoded up to
extf.data.tables.ONE_HOT_MAX categories, else a learned Embedding; a hashed column (dataset.hash_buckets): Hashing
into a fixed number of buckets + Embedding. Only built-in Keras layers and ops: the saved model loads with
safe_mode=True and takes raw rows (extf.data.rows).

Keras' FeatureSpace does the lookups and normalization too, but it does not impute: one missing cell makes its
Normalization's mean NaN, and every prediction with it.
"""

from __future__ import annotations

import re

TABLE_FAMILIES = ("mlp",)  # families that take a table's columns (a feature vector after the preprocessing)


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
    """The columns' encodings, concatenated into one feature vector per row."""
    import keras
    from keras import ops

    parts = []
    for col in spec["columns"]:
        x, name = inputs[col["name"]], layer_name(col["name"])
        if col["kind"] == "numeric":
            missing = ops.isnan(x)
            filled = ops.where(missing, ops.cast(col["mean"], x.dtype), x)
            if col.get("standardize", True):
                filled = keras.layers.Normalization(mean=[col["mean"]], variance=[col["std"] ** 2],
                                                    name=f"standardize_{name}")(filled)
            parts.append(filled)
            if col.get("missing_indicator"):
                parts.append(ops.cast(missing, "float32"))
        elif col["encoding"] == "hash":
            index = keras.layers.Hashing(col["hash_bins"], name=f"hash_{name}")(x)
            parts.append(_embedded(index, col["hash_bins"], col["embedding_dim"], name))
        elif col["encoding"] == "one_hot":
            parts.append(keras.layers.StringLookup(vocabulary=col["vocabulary"], num_oov_indices=1,
                                                   output_mode="one_hot", name=f"lookup_{name}")(x))
        else:
            index = keras.layers.StringLookup(vocabulary=col["vocabulary"], num_oov_indices=1,
                                              name=f"lookup_{name}")(x)
            parts.append(_embedded(index, len(col["vocabulary"]) + 1, col["embedding_dim"], name))
    if len(parts) == 1:
        return parts[0]
    return keras.layers.Concatenate(name="table_features")(parts)


def _embedded(index, n: int, dim: int, name: str):
    import keras

    vectors = keras.layers.Embedding(n, dim, name=f"embed_{name}")(index)  # (batch, 1, dim)
    return keras.layers.Reshape((dim,), name=f"embed_{name}_flat")(vectors)
