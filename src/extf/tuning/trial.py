"""One trial: build the model from the trial's config, fit on train, score on validation.

The test split never reaches this module.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from extf.errors import ConfigError


def make_callbacks(callbacks_cfg, trial_dir: Path, allow_targets=()) -> list:
    """Instantiate the configured Keras callbacks (the project's own ones too, from its allow_targets); relative
    file paths land in the trial's directory."""
    from omegaconf import OmegaConf

    from extf.config.instantiate import instantiate

    out = []
    for name, spec in (OmegaConf.to_container(callbacks_cfg, resolve=True) or {}).items():
        if spec is None:
            continue
        for key in ("filepath", "filename", "log_dir"):
            if key in spec and not Path(str(spec[key])).is_absolute():
                spec[key] = str(trial_dir / spec[key])
        out.append(instantiate(spec, where=f"callbacks.{name}", allow_targets=allow_targets))
    return out


def check_stateful_batches(cfg, splits) -> None:
    """A stateful model (any family with a true `stateful` key: extf's RNN, a project's own) has a fixed batch size
    that must divide every split (no partial last batch)."""
    if not cfg.model.get("stateful"):
        return
    bs = cfg.trainer.batch_size
    sizes = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    bad = {k: v for k, v in sizes.items() if v % bs}
    if bad:
        fits = [b for b in range(1, min(sizes.values()) + 1) if all(v % b == 0 for v in sizes.values())]
        raise ConfigError(f"model.stateful=true fixes the batch size (batch_input_shape = (batch_size, timesteps, "
                          f"features)), so trainer.batch_size must divide the number of samples of every split "
                          f"{sizes}. Batch sizes that fit: {fits}. Received: trainer.batch_size={bs}")


class StateResetter:
    @staticmethod
    def create():
        import keras

        from extf.models.rnn import reset_states

        class _Reset(keras.callbacks.Callback):
            """Stateful RNNs carry state across batches within an epoch; each epoch starts fresh. Validation is
            not reset: the validation split continues the training sequence, so it starts from train's last state."""

            def on_epoch_begin(self, epoch, logs=None):
                reset_states(self.model)

        return _Reset()


def finite(v) -> bool:
    """Whether a logged value is a finite number (NaN and infinities are not logged)."""
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fit(model, cfg, splits, callbacks: list, initial_epoch: int = 0, seed: int | None = None):
    """Fit on train with validation on the validation split; returns the Keras History. `initial_epoch`: go on from
    that epoch up to cfg.trainer.epochs (a hyperband trial that continues its parent's weights). `seed`: of the
    shuffling of the training split (default cfg.seed), a new order each epoch."""
    stateful = bool(cfg.model.get("stateful"))
    if stateful:
        callbacks = [*callbacks, StateResetter.create()]
    shuffle = bool(cfg.trainer.shuffle) and not stateful  # a stateful model's batches continue each other: in order
    batch_size = cfg.trainer.batch_size
    train, val = splits.train, splits.val
    with train.read_errors("dataset.skip_bad_files=true"), val.read_errors("dataset.skip_bad_files=true"):
        return model.fit(train.dataset(batch_size, shuffle=shuffle, seed=cfg.seed if seed is None else seed),
                         validation_data=val.dataset(batch_size), epochs=cfg.trainer.epochs,
                         initial_epoch=initial_epoch, verbose=cfg.trainer.verbosity, callbacks=callbacks,
                         shuffle=False)  # shuffled already (Keras warns at its default True for a tf.data input)


def val_loss_min(history: dict, objective_name: str) -> float | None:
    """The lowest validation loss of a fit: the leaderboard's tie-break (Objective.rank); None when it is the
    objective itself or was not logged."""
    losses = history.get("val_loss") if history else None
    return float(min(losses)) if losses and objective_name != "val_loss" else None


def best_value(history: dict, name: str, direction: str) -> tuple[float, int]:
    """The best value of a per-epoch metric and its epoch (0-based)."""
    values = np.asarray(history[name], dtype="float64")
    scores = np.where(np.isfinite(values), values, np.inf if direction == "min" else -np.inf)
    epoch = int(np.argmin(scores) if direction == "min" else np.argmax(scores))
    return float(values[epoch]), epoch


def kept_epochs(callbacks: list, history: dict) -> int:
    """The epochs behind the model a fit ends with: early stopping's best epoch when it restores that epoch's
    weights (Keras restores them at the end of the fit, stopped early or not), else every epoch trained."""
    import keras

    for cb in callbacks:
        if (isinstance(cb, keras.callbacks.EarlyStopping) and cb.restore_best_weights
                and cb.best_weights is not None):
            return int(cb.best_epoch) + 1
    return len(history.get("loss", []))


LATENCY_REPEATS = 5  # timed predictions of one batch; the median counts


def take_measures(model, split, batch_size: int, names: set[str]) -> dict[str, float]:
    """The measures extf takes of a trial's model (extf.config.objectives.MEASURES) among `names`: `params`, its
    number of parameters, and `latency_ms`, milliseconds per sample of predicting one batch of the validation
    split (the median of LATENCY_REPEATS calls, after one untimed call that traces the function)."""
    import time

    values = {}
    if "params" in names:
        values["params"] = float(model.count_params())
    if "latency_ms" in names:
        x = split.inputs(batch_size)
        n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        model.predict_on_batch(x)
        times = []
        for _ in range(LATENCY_REPEATS):
            start = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - start)
        values["latency_ms"] = 1000.0 * float(np.median(times)) / max(1, n)
    return values
