"""The baseline of P2: what a user writes by hand with keras-tuner and MLflow for the study extf runs with

    extf tune dataset=digits model=mlp tuner=random callbacks=none seed=42 tuner.max_trials=N trainer.epochs=E

Same data (scikit-learn's load_digits, stratified split 64 / 16 / 20 with the same seed), same model (Rescaling
1/16 -> Flatten -> [Dense -> (BatchNorm) -> Activation -> (Dropout)] x num_layers -> softmax), same search space
and names as conf/search_space/mlp.yaml, declared in the same order (keras-tuner's RandomSearch with the seed extf's
oracle gets, --tuner-seed, then draws the same trials), Adam, batch 32, shuffled, the same per-trial seeding. MLflow: a parent run, one nested
run per trial with its parameters and per-epoch metrics, in a SQLite store under <root>/mlruns; then the best
model is evaluated once on the test split and its metrics logged on the parent run. It writes the hyperparameters
each trial trained (active ones, in trial order) to <root>/trials.json, so P2 can check both sides trained the same.

    python bench/plain_keras_tuner.py --root DIR [--trials N] [--epochs E] [--seed S] [--tuner-seed T]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def load_splits(seed: int):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype("float32")[..., np.newaxis]
    y = digits.target.astype("int64")
    n = len(x)
    n_test, n_val = round(n * 0.2), round(n * 0.16)
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=y)
    train, val = train_test_split(rest, test_size=n_val, random_state=seed, stratify=y[rest])
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def build_mlp(values: dict, seed: int):
    """The MLP extf builds for these hyperparameters (model=mlp, digits), compiled as extf compiles it."""
    import keras

    keras.utils.set_random_seed(seed)
    num_layers = values["model.num_layers"]
    sizes = [values["model.units"], values.get("model.units_1"), values.get("model.units_2")][:num_layers]
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Rescaling(1.0 / 16.0)(inputs)
    x = keras.layers.Flatten()(x)
    for size in sizes:
        x = keras.layers.Dense(size)(x)
        if values["model.batch_norm"]:
            x = keras.layers.BatchNormalization(momentum=0.9)(x)  # extf's model.batch_norm_momentum
        x = keras.layers.Activation(values["model.activation"])(x)
        if values["model.dropout"] > 0:
            x = keras.layers.Dropout(values["model.dropout"])(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(values["optimizer.learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="where mlruns/ and the tuner directory go")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tuner-seed", type=int, default=None,
                        help="RandomSearch's seed (default --seed); extf hashes its seed first, P2 passes the result")
    args = parser.parse_args()

    import keras
    import keras_tuner as kt
    import mlflow

    seed = args.seed
    root = args.root.resolve()
    (root / "mlruns").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns/mlflow.db")
    if mlflow.get_experiment_by_name("plain") is None:
        mlflow.create_experiment("plain", artifact_location=(root / "mlruns" / "artifacts").as_uri())
    mlflow.set_experiment("plain")
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_splits(seed)

    class MLP(kt.HyperModel):
        def build(self, hp):
            # the order of conf/search_space/mlp.yaml as extf declares it: unconditional first, then conditional
            hp.Int("model.num_layers", 1, 3)
            hp.Int("model.units", 32, 256, step=32)
            hp.Choice("model.activation", ["relu", "tanh", "elu"])
            hp.Float("model.dropout", 0.0, 0.5, step=0.1)
            hp.Boolean("model.batch_norm")
            hp.Float("optimizer.learning_rate", 1e-4, 1e-2, sampling="log")
            with hp.conditional_scope("model.num_layers", [2, 3]):
                hp.Int("model.units_1", 16, 128, step=16)
            with hp.conditional_scope("model.num_layers", [3]):
                hp.Int("model.units_2", 16, 128, step=16)
            return build_mlp({k: v for k, v in hp.values.items() if hp.is_active(k)}, seed)

        def fit(self, hp, model, *fit_args, **kwargs):
            with mlflow.start_run(run_name="trial", nested=True):
                mlflow.log_params({k: v for k, v in hp.values.items() if hp.is_active(k)})

                class LogEpoch(keras.callbacks.Callback):
                    def on_epoch_end(self, epoch, logs=None):
                        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)

                kwargs["callbacks"] = [*kwargs.get("callbacks", []), LogEpoch()]
                history = model.fit(*fit_args, **kwargs)
                mlflow.log_metric("val_accuracy_best", max(history.history["val_accuracy"]))
                return history

    tuner_seed = seed if args.tuner_seed is None else args.tuner_seed
    tuner = kt.RandomSearch(MLP(), objective="val_accuracy", max_trials=args.trials, seed=tuner_seed,
                            directory=str(root / "tuner"), project_name="plain", overwrite=True)
    with mlflow.start_run(run_name="plain-study"):
        mlflow.log_params({"trials": args.trials, "epochs": args.epochs, "seed": seed})
        tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=32,
                     shuffle=True, verbose=0)
        best = tuner.get_best_models(1)[0]
        test = best.evaluate(x_test, y_test, batch_size=32, verbose=0, return_dict=True)
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in test.items()})
        mlflow.log_params({f"best.{k}": v for k, v in tuner.get_best_hyperparameters(1)[0].values.items()})
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    (root / "trials.json").write_text(json.dumps(
        [{k: v for k, v in t.hyperparameters.values.items() if t.hyperparameters.is_active(k)} for t in trials]))
    for trial in tuner.oracle.get_best_trials(args.trials):
        print(f"trial {trial.trial_id}: {trial.hyperparameters.values}  val_accuracy={trial.score:.4f}")
    print("test: " + "  ".join(f"{k}={v:.4f}" for k, v in test.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
