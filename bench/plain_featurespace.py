"""The baseline of P10: a plain Keras script training on the same CSV the way Keras' structured-data tutorial does,
with `keras.utils.FeatureSpace`: read the CSV with pandas, the same stratified, seeded train / validation / test
split as extf (scikit-learn's train_test_split: 20 % test, then 16 % of all for validation), missing numbers filled
with the training mean plus a 0/1 missing-indicator per column that has them (FeatureSpace itself does not impute),
FeatureSpace (float_normalized numbers, string_categorical one-hot categories; vocabularies and statistics adapted
on the training split) applied in the tf.data pipeline, the same MLP as extf's default (Dense 64 relu x 2, softmax),
Adam 1e-3, fit E epochs with validation, one evaluation on the test split.

    python bench/plain_featurespace.py --csv FILE.csv --target y [--epochs E] [--batch-size B] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import keras
    import numpy as np
    import pandas as pd
    import tensorflow as tf
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(args.seed)
    df = pd.read_csv(args.csv)
    classes, y = np.unique(df.pop(args.target).astype(str), return_inverse=True)
    n = len(df)
    rest, test = train_test_split(np.arange(n), test_size=round(n * 0.2), random_state=args.seed, stratify=y)
    train, val = train_test_split(rest, test_size=round(n * 0.16), random_state=args.seed, stratify=y[rest])
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    categories = [c for c in df.columns if c not in numeric]
    means = df.iloc[train][numeric].mean()
    flagged = [c for c in numeric if df.iloc[train][c].isna().any()]
    for c in flagged:
        df[f"{c}_missing"] = df[c].isna().astype("float32")
    df[numeric] = df[numeric].fillna(means).astype("float32")
    df[categories] = df[categories].fillna("").astype(str)

    def dataset(rows, shuffle=False, batch_size=args.batch_size):
        part = {c: df[c].to_numpy()[rows] for c in df.columns}
        ds = tf.data.Dataset.from_tensor_slices((part, y[rows]))
        if shuffle:
            ds = ds.shuffle(len(rows), seed=args.seed)
        return ds.batch(batch_size)

    features = {c: keras.utils.FeatureSpace.float_normalized() for c in numeric}
    features.update({f"{c}_missing": keras.utils.FeatureSpace.float() for c in flagged})
    features.update({c: keras.utils.FeatureSpace.string_categorical(num_oov_indices=1) for c in categories})
    space = keras.utils.FeatureSpace(features=features, output_mode="concat")
    space.adapt(dataset(train, batch_size=4096).map(lambda x, _: x))  # adapting in large batches: one pass, fast
    train_ds, val_ds, test_ds = (dataset(rows, shuffle=rows is train)
                                 .map(lambda x, t: (space(x), t), num_parallel_calls=tf.data.AUTOTUNE)
                                 .prefetch(tf.data.AUTOTUNE) for rows in (train, val, test))
    inputs = keras.Input(shape=(space.get_encoded_features().shape[-1],))
    x = inputs
    for _ in range(2):
        x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=0)
    result = model.evaluate(test_ds, verbose=0, return_dict=True)
    print(f"test accuracy {result['accuracy']:.4f} ({len(classes)} classes, {len(train)} training rows)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
