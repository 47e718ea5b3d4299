"""The baseline of P8 and P9: what a user writes by hand with Keras to train on a folder of images, for the work

    extf train dataset=image_dir dataset.path=DIR dataset.height=64 dataset.width=64 dataset.color_mode=rgb
               model=cnn callbacks=none trainer.epochs=E seed=S

`keras.utils.image_dataset_from_directory` (64x64 RGB, batch 32, bilinear resize, seeded) with the same split sizes
as extf's (64 % train; the rest split 16 / 20 into validation and test, in batches), prefetch, and extf's default
CNN: Rescaling 1/255 -> [Conv2D 3x3 same -> ReLU -> MaxPooling 2] x 2 (32, 64 filters) -> Flatten -> Dropout 0.25
-> Dense 64 ReLU -> Dense softmax; Adam 1e-3, sparse categorical cross-entropy, accuracy. It trains E epochs with
validation, then evaluates the test split once. No tracking.

    python bench/plain_image_folder.py --data DIR [--epochs E] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

VAL_FRACTION, TEST_FRACTION, BATCH, SIZE = 0.16, 0.2, 32, 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder with one sub-folder of images per class")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    train, holdout = keras.utils.image_dataset_from_directory(
        args.data, labels="inferred", label_mode="int", color_mode="rgb", batch_size=BATCH, image_size=(SIZE, SIZE),
        shuffle=True, seed=args.seed, validation_split=VAL_FRACTION + TEST_FRACTION, subset="both", verbose=False)
    n_classes = len(train.class_names)
    # the holdout batches come in a fixed order (Keras does not shuffle the validation subset): the first
    # val / (val + test) of them validate, the rest test
    n_batches = int(holdout.cardinality())
    n_val_batches = math.ceil(n_batches * VAL_FRACTION / (VAL_FRACTION + TEST_FRACTION))

    def pairs(*element):  # Keras 3.15 may yield extra elements
        return element[0], element[1]

    train = train.map(pairs).prefetch(tf.data.AUTOTUNE)
    val = holdout.take(n_val_batches).map(pairs).prefetch(tf.data.AUTOTUNE)
    test = holdout.skip(n_val_batches).map(pairs).prefetch(tf.data.AUTOTUNE)

    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    for i in range(2):
        x = layers.Conv2D(32 * 2**i, 3, padding="same")(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=args.epochs, verbose=0)
    result = model.evaluate(test, verbose=0, return_dict=True)
    print(f"test_accuracy={result['accuracy']:.4f} test_loss={result['loss']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
