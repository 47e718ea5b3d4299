"""The baseline of P2': the physical limit of a search, a bare `model.fit` loop over given hyperparameters with no
tuner and no tracking: load the digits splits (as bench/plain_keras_tuner.py), then for each trial build the same
MLP (same seeding), fit it for E epochs (batch 32, shuffled, validated on the validation split), keep the model of
the best val_accuracy and evaluate it once on the test split.

    python bench/plain_fit_loop.py --trials FILE.json [--epochs E] [--seed S]

FILE.json is a list of hyperparameter dicts (the keys of conf/search_space/mlp.yaml), the trials extf trained.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from plain_keras_tuner import build_mlp, load_splits  # noqa: E402  (same directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=Path, required=True, help="JSON list of the trials' hyperparameters")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    trials = json.loads(args.trials.read_text())

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_splits(args.seed)
    best, best_value = None, -1.0
    for i, values in enumerate(trials):
        model = build_mlp(values, args.seed)
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=32,
                            shuffle=True, verbose=0)
        value = max(history.history["val_accuracy"])
        print(f"trial {i}: {values}  val_accuracy={value:.4f}", flush=True)
        if value > best_value:
            best, best_value = model, value
    test = best.evaluate(x_test, y_test, batch_size=32, verbose=0, return_dict=True)
    print("test: " + "  ".join(f"{k}={v:.4f}" for k, v in test.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
