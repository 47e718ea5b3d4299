"""keras-tuner integration: our policy sits in `run_trial`; the oracles (random, bayesian, hyperband, grid) are
keras-tuner's own. Expected trial failures (NaN loss, a model the hyperparameters make impossible) raise
`FailedTrialError` so the search goes on; configuration problems raise `FatalError` and stop it.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from extf.console import quiet_stdout
from extf.errors import ConfigError, DataError, ExtfError, TrackingUnavailable, UserCodeError


def make_oracle(cfg, specs, objective):
    import keras_tuner as kt

    from extf.tuning.space import declare

    t = cfg.tuner
    seed = t.seed if t.seed is not None else cfg.seed
    kt_objective = kt.Objective(objective.name, direction=objective.direction)
    hp = declare(specs)
    common = {"objective": kt_objective, "hyperparameters": hp, "tune_new_entries": False, "seed": seed,
              "max_retries_per_trial": t.max_retries_per_trial,
              "max_consecutive_failed_trials": t.max_consecutive_failed_trials}
    if t.name == "random":
        return kt.oracles.RandomSearchOracle(max_trials=t.max_trials, **common)
    if t.name == "grid":
        for spec in specs:
            if spec.type == "float" and not spec.args.get("step"):
                raise ConfigError(f"tuner=grid needs a finite grid: search_space.{spec.path} is a continuous float. "
                                  f"Give it a `step` or make it a choice. Received: {spec.args}")
        return kt.oracles.GridSearchOracle(max_trials=t.max_trials, **common)
    if t.name == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=t.max_trials, num_initial_points=t.num_initial_points,
                                                     alpha=t.alpha, beta=t.beta, **common)
    if t.name == "hyperband":
        if t.factor < 2:
            raise ConfigError(f"tuner.factor must be an integer >= 2 (hyperband keeps 1/factor of the trials per "
                              f"round). Received: tuner.factor={t.factor}")
        oracle = kt.oracles.HyperbandOracle(max_epochs=t.max_epochs or cfg.trainer.epochs, factor=t.factor,
                                            hyperband_iterations=t.hyperband_iterations, **common)
        oracle.max_trials = t.max_trials  # the base Oracle stops creating trials past this cap
        return oracle
    raise ConfigError(f"Unknown tuner {t.name!r}. Expected one of: random, bayesian, hyperband, grid. "
                      f"Received: tuner.name={t.name!r}")


def make_tuner(cfg, specs, objective, study, directory: Path, overwrite: bool):
    import keras_tuner as kt
    from keras_tuner.src import config as kt_config
    from keras_tuner.src import utils as kt_utils

    # keras-tuner prints every failed trial's traceback by default; the trial's MLflow run keeps the reason
    kt_config.DEBUG = os.environ.get("EXTF_DEBUG") == "1"
    # keras-tuner rewrites oracle.json and trial.json in place: a kill in the middle would leave them cut
    kt_utils.save_json = _save_json_atomic

    class StudyTuner(kt.engine.base_tuner.BaseTuner):
        """Runs each trial through the study: MLflow child run, fit, objective, best-weights bookkeeping."""

        def run_trial(self, trial, *args, **kwargs):
            return run_trial(study, trial, self.get_trial_dir(trial.trial_id), trial_dir_of=self.get_trial_dir)

    oracle = make_oracle(cfg, specs, objective)
    with quiet_stdout():  # keras-tuner prints "Reloading Tuner from ..." when a study resumes
        return StudyTuner(oracle=oracle, directory=str(directory), project_name="search", overwrite=overwrite)


def _save_json_atomic(path, obj) -> str:
    """keras_tuner.utils.save_json, written to a temporary file first and renamed over the old one."""
    import json

    text = json.dumps(obj)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return text


def run_trial(study, trial, trial_dir: str, trial_dir_of=None) -> dict:
    """One trial; a tracking server that is gone stops the whole search (keras-tuner would retry the next trial).
    `trial_dir_of(trial_id)`: the directory of another trial (hyperband's warm start reads its parent's weights)."""
    import keras_tuner as kt

    try:
        with released_custom_gradients():
            return _run_trial(study, trial, trial_dir, trial_dir_of)
    except TrackingUnavailable as e:
        raise kt.errors.FatalError(e) from None


@contextmanager
def released_custom_gradients():
    """Forget the gradient functions TensorFlow registered while the block traced its functions.

    `tf.custom_gradient` in graph mode (Keras' traced train step uses it) registers each gradient function under a
    new name, "CustomGradient-<uid>", in TensorFlow's global gradient registry and never removes it; the function's
    closure holds the traced graph, so every trial's train/eval graphs stayed in memory (about 4 MB a trial for a
    tiny MLP; tensorflow#97697, keras-team/tf-keras#898). Once a trial is over, nothing differentiates through its
    graphs again (the kept model is only evaluated), so the names it added are dropped. A TensorFlow without that
    private registry makes this a no-op.
    """
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [k for k in registry if k not in before and str(k).startswith("CustomGradient-")]:
                registry.pop(name, None)


def _gradient_registry() -> dict | None:
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None
    return registry if isinstance(registry, dict) else None


WARM_START = "warm_start.weights.h5"  # hyperband: a trial's final weights, for the trial that continues it


def _run_trial(study, trial, trial_dir: str, trial_dir_of=None) -> dict:
    """Fit the trial (each execution), record it, keep its weights for hyperband's next round, clean up.

    Hyperband warm start (keras-tuner's own Hyperband tuner does the same): a trial that hyperband promotes to a
    later round carries `tuner/trial_id` (the trial of the previous round it continues), `tuner/initial_epoch` and
    `tuner/epochs`. It starts from that parent's final weights, `<parent's trial dir>/warm_start.weights.h5`, and
    fits epochs initial_epoch..epochs only, so `epochs_done` counts just the epochs added (the optimizer starts
    afresh, as in keras-tuner). The parent's weights take precedence over `init_from`. A parent whose file is missing
    (a study started before warm starts, a file deleted, a worker without the shared study directory) is said once on
    the study's output and the trial trains from scratch for all `tuner/epochs` epochs.

    The file is written (atomically) after a FINISHED hyperband trial that trains fewer than max_epochs: the last
    round of a bracket trains max_epochs and is never continued. keras-tuner's HyperbandOracle continues a trial at
    most once (a round's candidates exclude the trials already selected from the previous round, and a trial belongs
    to one round of one bracket), so the parent's file is deleted once the trial continuing it has ended, FINISHED
    or FAILED (FAILED is final: run_trial raises FailedTrialError, which keras-tuner does not retry). An interrupted
    trial (Ctrl-C, a fatal error, kill -9) keeps it, since that trial runs again when the study resumes. The files
    of trials hyperband does not promote stay until the study directory goes (one weights file each).
    """
    import keras_tuner as kt

    from extf.tuning.space import apply_hyperparameters
    from extf.tuning.trial import best_value, val_loss_min

    cfg, objective, tracker = study.cfg, study.objective, study.tracker
    hp = trial.hyperparameters
    hp_values = {k: v for k, v in hp.values.items() if hp.is_active(k)}
    trial_cfg = apply_hyperparameters(cfg, hp)
    if "tuner/epochs" in hp.values:  # hyperband decides the epochs of each bracket
        trial_cfg.trainer.epochs = int(hp.values["tuner/epochs"])
    # tuner/* values are keras-tuner's bookkeeping, not declared hyperparameters, so they are never "active"
    parent = hp.values.get("tuner/trial_id")
    parent_dir = Path(trial_dir_of(parent)) if parent and trial_dir_of is not None else None
    started = time.time()
    run_id = tracker.start_trial(study.parent_id, trial.trial_id, dict(hp_values), study.worker_id)
    epochs_done = 0
    rows = []  # per-epoch metrics not logged yet: they go with the trial's end, in one write
    try:
        warm_start = _warm_start(study, trial, parent_dir)
        values, best = [], None
        for execution in range(cfg.tuner.executions_per_trial):
            model, history = _fit_once(study, trial_cfg, Path(trial_dir), run_id, cfg.seed + execution, execution,
                                       warm_start, rows)
            epochs_done += len(history.get("loss", []))
            value, best_epoch = best_value(history, objective.name, objective.direction)
            values.append(value)
            if best is None or objective.better(value, best[0]):
                best = (value, model, history, best_epoch)
        # the objective of a trial with several executions is their mean; the best execution's model is kept
        value = float(np.mean(values))
        _, model, history, best_epoch = best
        summary = {objective.name + "_best": value, "best_epoch": best_epoch, "epochs_trained": epochs_done}
        if (loss_min := val_loss_min(history, objective.name)) is not None:  # the leaderboard's tie-break
            summary["val_loss_min"] = loss_min
        study.record_trial(trial.trial_id, hp_values, "FINISHED", value, epochs_done, time.time() - started,
                           model=model, history=history)
        if _may_be_continued(cfg, hp):
            _save_warm_start(study, trial, model, Path(trial_dir))
        tracker.end_trial(run_id, "FINISHED", summary, rows)
        _drop_checkpoints(Path(trial_dir), keep=WARM_START)
        _drop_warm_start(parent_dir)
        return {objective.name: value}
    except KeyboardInterrupt:
        tracker.end_trial(run_id, "KILLED", history=rows, reason="interrupted (KeyboardInterrupt)")
        raise
    except TrackingUnavailable:  # a pipelined call's (extf.tracking.process): the study stops, the trial reruns
        raise
    except kt.errors.FatalError as e:
        tracker.end_trial(run_id, "FAILED", history=rows, reason=str(e.args[0] if e.args else e))
        raise
    except BaseException as e:
        reason = str(e) if isinstance(e, (ExtfError, kt.errors.FailedTrialError)) else f"{type(e).__name__}: {e}"
        tracker.end_trial(run_id, "FAILED", history=rows, reason=reason)
        study.record_trial(trial.trial_id, hp_values, "FAILED", None, epochs_done, time.time() - started,
                           reason=reason.splitlines()[0][:200])
        if study.first_error is None:
            study.first_error = e
        _drop_checkpoints(Path(trial_dir))
        if isinstance(e, Exception):  # the trial ends FAILED: nothing continues its parent any more
            _drop_warm_start(parent_dir)
        if isinstance(e, kt.errors.FailedTrialError):
            raise
        raise kt.errors.FailedTrialError(reason) from e


def _fit_once(study, trial_cfg, trial_dir: Path, run_id, seed: int, execution: int,
              warm_start: tuple[Path, int] | None = None, rows: list | None = None):
    """Build and fit one model; refuse a diverged loss or an objective the model does not produce.
    `warm_start`: (weights file, initial epoch) of the hyperband trial this one continues; `rows`: where the
    per-epoch metrics not logged during the fit go at its end (the trial's end logs them)."""
    import keras_tuner as kt

    from extf.tuning.trial import EpochLogger, fit, make_callbacks

    model = _build(study, trial_cfg, seed, init_from=warm_start is None)
    initial_epoch = 0
    if warm_start is not None:
        path, initial_epoch = warm_start
        try:
            _load_weights(model, path)
        except (OSError, ValueError, KeyError) as e:  # unreadable: as if it were missing
            study.say(f"trial {_trial_id(trial_dir)}: cannot load {path} ({type(e).__name__}: {e}); it trains "
                        f"from scratch for {trial_cfg.trainer.epochs} epochs")
            model, initial_epoch = _build(study, trial_cfg, seed, init_from=True), 0
    callbacks = make_callbacks(trial_cfg.callbacks, trial_dir, tuple(trial_cfg.get("allow_targets") or ()))
    callbacks.append(EpochLogger.create(study.tracker, run_id, prefix=f"execution_{execution}." if execution else "",
                                        rest=rows))
    try:
        history = fit(model, trial_cfg, study.splits, callbacks, initial_epoch=initial_epoch, seed=seed).history
    except DataError as e:  # a damaged file: every trial would meet it
        raise kt.errors.FatalError(e) from None
    losses = np.asarray(history.get("loss", []), dtype="float64")
    if losses.size == 0 or not np.all(np.isfinite(losses)):
        bad = int(np.flatnonzero(~np.isfinite(losses))[0]) if losses.size else 0
        raise kt.errors.FailedTrialError(f"training diverged: loss became NaN or infinite at epoch {bad + 1}")
    name = study.objective.name
    if name not in history:
        available = sorted(k for k in history if k.startswith("val_"))
        raise kt.errors.FatalError(ConfigError(
            f"The objective metric {name!r} is not produced by this model. Expected one of its validation "
            f"metrics: {', '.join(available)}. Set tuner.objective.name. Received: tuner.objective.name={name!r}"))
    return model, history


def _build(study, trial_cfg, seed: int, init_from: bool):
    """A fresh model for the trial's config (seeded); `init_from`: with the weights of study.init_weights."""
    import keras
    import keras_tuner as kt

    from extf.models import build_model

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    try:
        model = build_model(trial_cfg, study.splits.meta)
    except UserCodeError as e:  # the project's model function is broken: every trial would fail the same way
        raise kt.errors.FatalError(e) from None
    if init_from and study.init_weights is not None:
        from extf.models.io import load_weights_into

        try:
            load_weights_into(model, study.init_weights, f"init_from={study.cfg.init_from}")
        except ExtfError as e:
            raise kt.errors.FatalError(e) from None
    return model


def _load_weights(model, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():  # the fresh optimizer has no slots yet: it starts afresh, as in keras-tuner
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def _warm_start(study, trial, parent_dir: Path | None) -> tuple[Path, int] | None:
    """(the parent's weights file, the epoch to start from) for a trial hyperband promoted; None for a trial from
    scratch, also when the parent's file is missing (said once)."""
    if parent_dir is None:
        return None
    hp = trial.hyperparameters.values
    path = parent_dir / WARM_START
    if path.is_file():
        return path, int(hp.get("tuner/initial_epoch") or 0)
    study.say(f"trial {trial.trial_id} continues hyperband trial {hp['tuner/trial_id']}, whose weights are "
                f"missing ({path}); it trains from scratch for {int(hp.get('tuner/epochs') or 0)} epochs")
    return None


def _may_be_continued(cfg, hp) -> bool:
    """Whether hyperband may promote this trial to a later round: a hyperband trial that trains fewer than max_epochs
    (the last round of every bracket trains max_epochs)."""
    if cfg.tuner.name != "hyperband" or "tuner/epochs" not in hp.values:
        return False
    return int(hp.values["tuner/epochs"]) < int(cfg.tuner.max_epochs or cfg.trainer.epochs)


def _save_warm_start(study, trial, model, trial_dir: Path) -> None:
    """The trial's final weights for the trial that continues it, written atomically (Keras wants the temporary
    name to end in .weights.h5 too). Not saving them only costs that trial its warm start."""
    tmp = trial_dir / f"warm_start.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(tmp)
        os.replace(tmp, trial_dir / WARM_START)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        study.say(f"trial {trial.trial_id}: cannot save its weights for hyperband's next round ({e}); a trial "
                    f"continuing it will train from scratch")


def _drop_warm_start(parent_dir: Path | None) -> None:
    if parent_dir is not None:
        (parent_dir / WARM_START).unlink(missing_ok=True)


def drop_warm_starts(tuner_dir: Path) -> None:
    """The search is over: no trial continues another any more, so every warm start goes (about one model's weights
    per trial not promoted). A study resumed with a larger budget may still continue a bracket whose next round had
    not started: those trials say so and train from scratch."""
    for f in tuner_dir.glob(f"search/trial_*/{WARM_START}"):
        f.unlink(missing_ok=True)


def _trial_id(trial_dir: Path) -> str:
    return trial_dir.name.removeprefix("trial_")


def _drop_checkpoints(trial_dir: Path, keep: str | None = None) -> None:
    """Per-trial checkpoints are only needed during the trial; the study keeps the best weights in best/. `keep`:
    a file name to leave (the hyperband warm start of a FINISHED trial, which a later round may continue)."""
    for pattern in ("*.weights.h5", "*.keras", "*.h5"):
        for f in trial_dir.glob(pattern):
            if f.name != keep:
                f.unlink(missing_ok=True)
