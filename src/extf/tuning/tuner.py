"""The trial lifecycle on keras-tuner's hooks; the oracles (random, bayesian, hyperband, grid) are keras-tuner's own.

keras-tuner's search loop (BaseTuner.search), in every process that runs trials (the `extf tune` process, worker0
of a distributed search, each `extf worker`):

    trial = oracle.create_trial(tuner_id)
    on_trial_begin(trial)   the trial's MLflow run opens
    run_trial(trial)        build + fit each execution (train, validation); on_epoch_end after every epoch
    on_trial_end(trial)     from keras-tuner's verdict (COMPLETED, or FAILED with its message): the run gets its
                            values and ends, the study records the trial; then the oracle ends it

Expected trial failures (NaN loss, a model the hyperparameters make impossible) are `FailedTrialError`s: the
search goes on. Problems every trial would meet (a broken project model, a damaged data file, an objective the
model does not produce, a lost tracking server) raise `FatalError` and stop it; keras-tuner calls no hook then, so
`run_trial` ends the trial's run itself (`on_trial_abort`), as it does on Ctrl-C.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
from keras_tuner.src import config as kt_config
from keras_tuner.src import utils as kt_utils

from extf.console import quiet_stdout, startup_objects_frozen
from extf.errors import (
    DataError,
    ExtfError,
    TrackingUnavailable,
    UserCodeError,
    interrupted,
    raise_if_interrupted,
)
from extf.models import build_model
from extf.tuning import warm_start as ws
from extf.tuning.context import CHIEF_WORKER, STOP, TrialContext, TrialResult
from extf.tuning.oracle import has_policies, make_oracle
from extf.tuning.pruning import FINAL_EPOCH, pruned_epoch
from extf.tuning.space import apply_hyperparameters
from extf.tuning.trial import (
    best_value,
    finite,
    fit,
    kept_epochs,
    make_callbacks,
    take_measures,
    val_loss_min,
)

FLUSH_EVERY = 10  # epochs of values sent to the trial's run at once


@dataclass
class RunningTrial:
    """The trial between on_trial_begin and on_trial_end."""

    run_id: str | None
    hp_values: dict  # the active hyperparameters: the run's params and the trial's row
    trial_dir: Path
    parent: Path | None  # hyperband: the directory of the trial this one continues
    started: float
    epochs: int = 0  # epochs trained over all executions
    prefix: str = ""  # of the per-epoch metric names: `execution_<n>.` from the second execution on
    rows: list = field(default_factory=list)  # per-epoch values not yet sent
    result: TrialResult | None = None  # run_trial's outcome (FINISHED)
    summary: dict = field(default_factory=dict)  # the run's final metrics
    error: BaseException | None = None  # what made run_trial fail
    pruned_at: int | None = None  # the 1-based epoch the oracle's pruning stopped the trial at
    stopped: bool = False  # the oracle stopped the trial (pruning, the time budget): no further fold or execution
    last_unit: bool = True  # the fit running is the trial's last fold or execution
    best_step: int = 0  # the epoch (0-based) of the kept model's best objective value


def _fatal_if_tracking_lost(hook):
    """A tracking server that is gone stops the whole search (keras-tuner would go on with the next trial)."""

    @functools.wraps(hook)
    def wrapped(self, *args, **kwargs):
        try:
            return hook(self, *args, **kwargs)
        except TrackingUnavailable as e:
            raise kt.errors.FatalError(e) from None

    return wrapped


class StudyTuner(kt.engine.base_tuner.BaseTuner):
    """Runs a study's trials on keras-tuner's search loop; all it knows of the study is its TrialContext."""

    def __init__(self, ctx: TrialContext, oracle, directory: Path, overwrite: bool):
        self.ctx = ctx
        self.running: RunningTrial | None = None
        super().__init__(oracle=oracle, directory=str(directory), project_name="search", overwrite=overwrite)
        if ctx.worker_id:  # the chief runs its own trials as worker0 (a remote worker's id is already its own)
            self.tuner_id = ctx.worker_id

    def _get_tuner_fname(self) -> str:
        """The process that holds the oracle (a study alone, or the chief, whose tuner id becomes worker0 only after
        keras-tuner's __init__ looked for this file) keeps its state in tuner0.json: a study resumed in either mode
        reloads its oracle from there. Keyed by the tuner id, the chief saved worker0.json but looked for tuner0.json,
        so a resumed distributed study started a fresh oracle and ran its finished trials again. A distributed study
        begun before that fix has only worker0.json: its chief goes on with that file."""
        if self._is_worker():
            return super()._get_tuner_fname()
        state = os.path.join(str(self.project_dir), "tuner0.json")
        before_fix = os.path.join(str(self.project_dir), f"{CHIEF_WORKER}.json")
        if not os.path.exists(state) and os.path.exists(before_fix):
            return before_fix
        return state

    def search(self, *fit_args, **fit_kwargs):
        """keras-tuner's search, with the start-up's objects kept out of the trials' garbage collections."""
        with startup_objects_frozen():
            return super().search(*fit_args, **fit_kwargs)

    @_fatal_if_tracking_lost
    def on_trial_begin(self, trial) -> None:
        """The trial's MLflow run opens, a child of the study's parent run."""
        hp = trial.hyperparameters
        hp_values = {k: v for k, v in hp.values.items() if hp.is_active(k)}
        started = time.time()
        run_id = self.ctx.tracker.start_trial(self.ctx.parent_run_id, trial.trial_id, dict(hp_values),
                                              self.ctx.worker_id)
        self.running = RunningTrial(run_id, hp_values, Path(self.get_trial_dir(trial.trial_id)),
                                    ws.parent_dir(hp.values, self.get_trial_dir), started)

    def run_trial(self, trial, *fit_args, **fit_kwargs) -> dict:
        """Build and fit the trial's model; returns its objective for the oracle."""
        try:
            with released_custom_gradients():
                return self._fit_trial(trial)
        except TrackingUnavailable as e:
            self.on_trial_abort(trial, e)
            raise kt.errors.FatalError(e) from None
        except (KeyboardInterrupt, kt.errors.FatalError) as e:
            self.on_trial_abort(trial, e)
            raise
        except BaseException as e:
            if interrupted():  # a Ctrl-C that Python dropped inside TensorFlow (seen: in an import that TensorFlow's
                # C++ made, then "'list' object has no attribute '_type_spec'") made the fit fail another way
                self.on_trial_abort(trial, KeyboardInterrupt())
                raise_if_interrupted()
            self.running.error = e
            if isinstance(e, kt.errors.FailedTrialError):
                raise
            raise kt.errors.FailedTrialError(_reason(e)) from e

    def on_epoch_end(self, trial, model, epoch: int, logs: dict | None = None, last: bool = False) -> None:
        """After each epoch of the trial's fit (`last`: the fit's last epoch): its values go to the trial's run (in
        batches) and to the study's TrialContext.report, which may stop the fit there."""
        raise_if_interrupted()  # a Ctrl-C that Python dropped in a garbage-collector callback still stops the study
        logs = dict(logs or {})
        lr = getattr(getattr(model, "optimizer", None), "learning_rate", None)
        if lr is not None:
            logs.setdefault("learning_rate", float(np.asarray(lr)))
        values = {k: float(v) for k, v in logs.items() if finite(v)}
        running = self.running
        running.rows.append((epoch, {running.prefix + k: v for k, v in values.items()}))
        if len(running.rows) >= FLUSH_EVERY:
            self._send_epochs()
        if self.ctx.report(epoch, values) == STOP or self._oracle_stops(trial, epoch, values,
                                                                        final=last and running.last_unit):
            model.stop_training = True

    def _oracle_stops(self, trial, epoch: int, values: dict, final: bool = False) -> bool:
        """With pruning or a time budget, each epoch's objective goes to the oracle (the chief's, in a distributed
        search), whose answer is STOPPED once a policy ends the trial: the fit stops after this epoch. At the trial's
        `final` epoch (the last fold's or execution's last) there is nothing left to stop: the trial trained in
        full and is not recorded as pruned."""
        name = self.ctx.objective.name
        if not has_policies(self.ctx.cfg) or name not in values:
            return False
        report = {name: values[name]}
        if final and self.ctx.cfg.tuner.get("pruning", "none") != "none":
            report[FINAL_EPOCH] = 1.0  # the pruning oracle neither prunes nor records the trial at this epoch
        answer = self.oracle.update_trial(trial.trial_id, report, step=epoch)
        if answer.status != kt.engine.trial.TrialStatus.STOPPED or final:  # the budget's answer too
            return False
        self.running.stopped = True
        pruned = pruned_epoch(answer)
        if pruned is not None:
            self.running.pruned_at = pruned + 1
        return True

    @_fatal_if_tracking_lost
    def on_trial_end(self, trial) -> None:
        """From keras-tuner's verdict: the trial's run gets its values and ends FINISHED or FAILED (with the reason
        from keras-tuner's message), the study records the trial, its files are cleaned up; then the oracle ends it."""
        running, tracker = self.running, self.ctx.tracker
        if trial.status == kt.engine.trial.TrialStatus.COMPLETED:
            running.result.seconds = time.time() - running.started
            running.result.budget_left = self._budget_left()
            if running.pruned_at is not None:
                running.result.pruned_at = running.pruned_at
                tracker.set_tags(running.run_id, {"extf.pruned": "true", "extf.pruned_epoch": running.pruned_at})
            self.ctx.record(running.result)
            # the summary and the epochs not sent yet go with the run's end: one write per trial
            tracker.end_trial(running.run_id, "FINISHED", running.summary, running.rows)
            ws.drop_checkpoints(running.trial_dir, keep=ws.WARM_START)
        else:
            reason = failure_reason(trial.message)
            tracker.end_trial(running.run_id, "FAILED", history=running.rows, reason=reason)
            self.ctx.record(TrialResult(trial.trial_id, running.hp_values, "FAILED", None, running.epochs,
                                        time.time() - running.started, reason=reason.splitlines()[0][:200],
                                        error=running.error, budget_left=self._budget_left()))
            ws.drop_checkpoints(running.trial_dir)
        # the run's end is in the store before the oracle counts the trial as done: a server lost meanwhile stops
        # the study with the trial still open, so the resumed study runs it again (the pipelined end would be lost)
        tracker.flush()
        if running.error is None or isinstance(running.error, Exception):  # nothing continues the parent any more
            ws.drop_warm_start(running.parent)
        self.running = None
        super().on_trial_end(trial)

    def _budget_left(self) -> float | None:
        """Seconds left of the study's time budget; None without one. A worker process's oracle is the chief's
        gRPC client, which cannot ask for it: there, the deadline the chief wrote into worker.json."""
        time_left = getattr(self.oracle, "time_left", None)
        if callable(time_left):
            return time_left()
        deadline = self.ctx.budget_deadline
        return None if deadline is None else max(0.0, deadline - time.time())

    def on_trial_abort(self, trial, error: BaseException) -> None:
        """Not a keras-tuner hook: a trial that stops the search (Ctrl-C, a FatalError) gets no on_trial_end, so its
        run ends here, KILLED or FAILED. It is not recorded: it runs again when the study resumes."""
        running, self.running = self.running, None
        if running is None:
            return
        if isinstance(error, KeyboardInterrupt):
            status, reason = "KILLED", "interrupted (KeyboardInterrupt)"
        else:
            status, reason = "FAILED", str(error.args[0] if error.args else error)
        try:
            self.ctx.tracker.end_trial(running.run_id, status, history=running.rows, reason=reason)
        except TrackingUnavailable:  # the error that stops the study says so; the next run ends the run
            pass

    def _send_epochs(self) -> None:
        running = self.running
        if running.rows:
            self.ctx.tracker.log_metric_history(running.run_id, running.rows)
            running.rows = []

    def _fit_trial(self, trial) -> dict:
        """Each execution (or, with cross-validation, each fold) fits a fresh model; the objective is their mean,
        the best one's model is kept. A trial the oracle stops (pruning, the time budget) ends with the fold or
        execution it stopped in."""
        cfg, objective, running = self.ctx.cfg, self.ctx.objective, self.running
        values = trial.hyperparameters.values
        trial_cfg = apply_hyperparameters(cfg, trial.hyperparameters)
        if "tuner/epochs" in values:  # hyperband decides the epochs of each bracket
            trial_cfg.trainer.epochs = int(values["tuner/epochs"])
        start = ws.warm_start(trial.trial_id, values, running.parent, self.ctx.say)
        folds = self.ctx.folds
        units = folds or [self.ctx.splits] * cfg.tuner.executions_per_trial
        scores, kept, best = [], [], None
        for n, splits in enumerate(units):
            running.prefix = f"fold_{n}." if folds else (f"execution_{n}." if n else "")
            running.last_unit = n == len(units) - 1
            model, history, epochs_kept = self._fit_once(trial, trial_cfg, cfg.seed + n, start, splits)
            running.epochs += len(history.get("loss", []))
            value, best_epoch = best_value(history, objective.name, objective.direction)
            scores.append(value)
            kept.append(epochs_kept)
            if best is None or objective.better(value, best[0]):
                best = (value, model, history, best_epoch)
            if running.stopped:
                break
        value, (_, model, history, best_epoch) = float(np.mean(scores)), best
        running.result = TrialResult(trial.trial_id, running.hp_values, "FINISHED", value, running.epochs,
                                     0.0, model=model, history=history)
        running.summary = {objective.name + "_best": value, "best_epoch": best_epoch, "epochs_trained": running.epochs}
        if folds:  # the spread over folds, and the epochs the final model (train + validation) will train: the mean
            # over folds of the epochs behind each fold's kept model (early stopping's restored epoch, else all)
            running.result.cv_epochs = max(1, round(float(np.mean(kept))))
            running.summary.update({objective.name + "_std": float(np.std(scores)),
                                    "cv_epochs": running.result.cv_epochs,
                                    **{f"fold_{n}.{objective.name}_best": s for n, s in enumerate(scores)}})
        if (loss_min := val_loss_min(history, objective.name)) is not None:  # the leaderboard's tie-break
            running.summary["val_loss_min"] = loss_min
        # params (and latency_ms, the other objectives): the row, the run, the oracle
        running.result.measures = self._measures(model, history, best_epoch, trial_cfg)
        running.summary.update(running.result.measures)
        running.best_step = best_epoch
        if ws.may_be_continued(cfg, values):
            ws.save_warm_start(trial.trial_id, model, running.trial_dir, self.ctx.say)
        return {objective.name: value, **running.result.measures}

    def _measures(self, model, history: dict, best_epoch: int, trial_cfg) -> dict[str, float]:
        """What the study's objectives and constraints need besides the objective: the measures extf takes of the
        kept model and the other validation metrics at its best epoch."""
        objectives, name = self.ctx.objectives, self.ctx.objective.name
        values = take_measures(model, self.ctx.splits.val, trial_cfg.trainer.batch_size, objectives.measures())
        values.update({n: float(history[n][best_epoch]) for n in objectives.metrics(name)})
        return values

    def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        """keras-tuner's own, minus its DeprecationWarning: the trial's values go to the oracle at the kept model's
        epoch (the step the Optuna oracle reads the other objectives at). With pruning or a time budget the
        objective reached the oracle epoch by epoch already (_oracle_stops), which is all a single-objective oracle
        needs; NSGA-II also needs the other objectives, sent with the objective as the value the oracle holds at
        that step (keras-tuner wants it in every report; its mean stays the same)."""
        results = self.run_trial(trial, *fit_args, **fit_kwargs)
        name, step = self.oracle.objective.name, self.running.best_step
        if has_policies(self.ctx.cfg):
            metrics = self.oracle.get_trial(trial.trial_id).metrics
            held = [o for o in metrics.get_history(name) if o.step == step] if metrics.exists(name) else []
            if held and not self.ctx.objectives.several:
                return
            if held:
                results = {**results, name: float(held[-1].mean())}
        self.oracle.update_trial(trial.trial_id, results, step=step)

    def _fit_once(self, trial, trial_cfg, seed: int, start: tuple[Path, int] | None, splits):
        """Build and fit one model on `splits` (the study's, or a fold's); refuse a diverged loss or an objective
        the model does not produce. `start`: (weights file, initial epoch) of the hyperband trial this one continues.
        Returns the model, its history and the epochs behind the model (trial.kept_epochs)."""
        model, initial_epoch = self._build(trial_cfg, seed, init_from=start is None, meta=splits.meta), 0
        if start is not None:
            path, initial_epoch = start
            try:
                _load_weights(model, path)
            except (OSError, ValueError, KeyError) as e:  # unreadable: as if it were missing
                self.ctx.say(f"trial {trial.trial_id}: cannot load {path} ({type(e).__name__}: {e}); it trains "
                             f"from scratch for {trial_cfg.trainer.epochs} epochs")
                model, initial_epoch = self._build(trial_cfg, seed, init_from=True, meta=splits.meta), 0
        callbacks = make_callbacks(trial_cfg.callbacks, self.running.trial_dir,
                                   tuple(trial_cfg.get("allow_targets") or ()))
        callbacks.append(EpochHook(self, trial))
        try:
            history = fit(model, trial_cfg, splits, callbacks, initial_epoch=initial_epoch, seed=seed).history
        except DataError as e:  # a damaged file: every trial would meet it
            raise kt.errors.FatalError(e) from None
        _check_history(history, self.ctx.objective.name, self.ctx.objectives)
        return model, history, kept_epochs(callbacks, history)

    def _build(self, trial_cfg, seed: int, init_from: bool, meta):
        """A fresh model for the trial's config (seeded) and data (`meta`: its statistics and vocabularies);
        `init_from`: with the weights of ctx.init_weights."""
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        try:
            model = build_model(trial_cfg, meta)
        except UserCodeError as e:  # the project's model function is broken: every trial would fail the same way
            raise kt.errors.FatalError(e) from None
        if init_from and self.ctx.init_weights is not None:
            from extf.models.io import load_weights_into

            try:
                load_weights_into(model, self.ctx.init_weights, f"init_from={self.ctx.cfg.init_from}")
            except ExtfError as e:
                raise kt.errors.FatalError(e) from None
        return model


class EpochHook(keras.callbacks.Callback):
    """Hands each epoch's values to the tuner's on_epoch_end (keras-tuner's own Keras Tuner does the same)."""

    def __init__(self, tuner: StudyTuner, trial):
        super().__init__()
        self.tuner = tuner
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 >= self.params.get("epochs", epoch + 2)  # Keras' params: the fit's epochs
        self.tuner.on_epoch_end(self.trial, self.model, epoch, logs, last=last)


def make_tuner(ctx: TrialContext, specs, directory: Path, overwrite: bool) -> StudyTuner:
    """The study's tuner over the space `specs`, its state (oracle, trials) in `directory`."""
    # keras-tuner prints every failed trial's traceback by default; the trial's MLflow run keeps the reason
    kt_config.DEBUG = os.environ.get("EXTF_DEBUG") == "1"
    # keras-tuner rewrites oracle.json and trial.json in place: a kill in the middle would leave them cut
    kt_utils.save_json = _save_json_atomic
    oracle = make_oracle(ctx.cfg, specs, ctx.objective, ctx.objectives.goals, ctx.started)
    with quiet_stdout():  # keras-tuner prints "Reloading Tuner from ..." when a study resumes
        return StudyTuner(ctx, oracle, directory, overwrite)


def failure_reason(message: str | None) -> str:
    """The reason of a FAILED trial from keras-tuner's message, the traceback of run_trial's FailedTrialError:
    that error's text."""
    text = (message or "").rstrip("\n")
    lines = text.rsplit("Traceback (most recent call last):\n", 1)[-1].splitlines()
    first = next((n for n, line in enumerate(lines) if line and not line.startswith(" ")), 0)
    head, _, reason = "\n".join(lines[first:]).partition(": ")
    return reason if reason and " " not in head else (text or "the trial failed")


def _reason(e: BaseException) -> str:
    return str(e) if isinstance(e, (ExtfError, kt.errors.FailedTrialError)) else f"{type(e).__name__}: {e}"


def _check_history(history: dict, objective: str, objectives) -> None:
    """The loss stayed finite; the objective and the other metrics the study's `objectives` need were logged
    (checked before any trial for extf's own model families, here for a project's model function)."""
    losses = np.asarray(history.get("loss", []), dtype="float64")
    if losses.size == 0 or not np.all(np.isfinite(losses)):
        bad = int(np.flatnonzero(~np.isfinite(losses))[0]) if losses.size else 0
        raise kt.errors.FailedTrialError(f"training diverged: loss became NaN or infinite at epoch {bad + 1}")
    missing = [n for n in [objective, *objectives.metrics(objective)] if n not in history]
    if missing:
        available = [k for k in history if k.startswith("val_")]
        raise kt.errors.FatalError(objectives.not_produced(missing[0], objective, available))


def _load_weights(model, path: Path) -> None:
    with warnings.catch_warnings():  # the fresh optimizer has no slots yet: it starts afresh, as in keras-tuner
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def _save_json_atomic(path, obj) -> str:
    """keras_tuner.utils.save_json, written to a temporary file first and renamed over the old one."""
    import json

    text = json.dumps(obj)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return text


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
