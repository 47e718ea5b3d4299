"""What every process of a study does before its first trial (the `extf tune` process and each `extf worker`): load
the data once and check everything that can be checked without TensorFlow, start the tracking process, import
TensorFlow (the two start-ups overlap), open the tracker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError, ExtfError
from extf.objective import Objective
from extf.tuning.pareto import Objectives


@dataclass(frozen=True)
class SearchInputs:
    space: list  # the parsed search space (extf.tuning.space.parse_space)
    splits: Any  # the dataset's splits (train, val, test) and its Meta
    objective: Objective
    folds: tuple = ()  # tuner.cv_folds >= 2: the folds of train + validation (extf.data.folds) each trial trains on
    objectives: Objectives = field(default_factory=Objectives)  # several objectives, constraints (empty: one)


def start_tracking_process(cfg: DictConfig, experiment_name: str):
    """Tracking on: the MLflow tracking process, started before TensorFlow's import, which its start-up (importing
    MLflow, opening or creating the store) then overlaps on the other core (see extf.tracking.process); else None.
    Started once `check_search` has passed: a config or data error starts no process. A study that stops before
    `open_tracker` may leave a new, empty store behind."""
    from extf.tracking.process import TrackerProcess

    tcfg = cfg.tracking
    if tcfg.enabled and tcfg.tracking_uri:
        # a local worker logs through its chief's tracking process (extf.tracking.process, EXTF_TRACKING_FD)
        return TrackerProcess.start(OmegaConf.to_container(tcfg, resolve=True), experiment_name)
    return None


def check_search(cfg: DictConfig) -> SearchInputs:
    """Everything a search needs before the first trial, made and checked without TensorFlow or MLflow: the space,
    the data (loaded once), whether the model family, its batches and the augmentation suit the data, the folds,
    the objectives and the metrics they need (the tuner's needs were checked with the config). A config or data
    error stops here, at no cost of their start-ups."""
    from extf.tuning.pareto import study_objectives
    from extf.tuning.space import parse_space

    space = parse_space(cfg.search_space, cfg)
    splits = _checked_splits(cfg)
    folds = ()
    if cfg.tuner.get("cv_folds"):
        from extf.data.folds import fold_splits

        folds = tuple(fold_splits(splits, int(cfg.tuner.cv_folds), cfg.tuner.cv_method, cfg.seed,
                                  OmegaConf.to_container(cfg.dataset, resolve=True)))
    objective, objectives = study_objectives(cfg.tuner, splits.meta.task)
    _refuse_a_penalty_scored_by_itself(space, list(dict.fromkeys([objective.name, *objectives.names()])))
    check_produced(cfg, splits.meta, objective.name, objectives, build_metrics=False)
    return SearchInputs(space, splits, objective, folds, objectives)


def _refuse_a_penalty_scored_by_itself(space, objective_names: list[str]) -> None:
    """Keras adds `model.l2`'s penalty to the loss it reports, val_loss included: a search of model.l2 scored on
    val_loss would always prefer the smallest penalty."""
    if "val_loss" in objective_names and any(s.path == "model.l2" for s in space):
        raise ConfigError("search_space searches model.l2, but the objective val_loss includes the L2 penalty itself "
                          "(Keras adds it to the loss), so the search would always prefer the smallest l2. Expected "
                          "a penalty-free objective: tuner.objective.name=val_accuracy, or a loss the model logs as "
                          "a metric, e.g. model.metrics=[accuracy,sparse_categorical_crossentropy] with "
                          "tuner.objective.name=val_sparse_categorical_crossentropy (model.metrics=[mse] with val_mse "
                          f"for regression). Received: objectives {objective_names}, search_space.model.l2")


def check_with_tensorflow(cfg: DictConfig, inputs: SearchInputs) -> None:
    """TensorFlow imported (after the tracking process has started: its start-up overlaps the import), then what
    only Keras can tell: the model logs every metric the objectives name, when model.metrics has metric objects
    (`_target_` specs: only the object knows its name)."""
    from extf.console import import_tensorflow

    import_tensorflow()
    check_produced(cfg, inputs.splits.meta, inputs.objective.name, inputs.objectives)


def prepare_search(cfg: DictConfig) -> SearchInputs:
    """`check_search`, then `check_with_tensorflow` (in an `extf worker`, after its tracking process has started)."""
    inputs = check_search(cfg)
    check_with_tensorflow(cfg, inputs)
    return inputs


def _checked_splits(cfg: DictConfig):
    """The dataset's splits as the model family trains on them, once they are known to suit the model, its
    batches and the augmentation. The built-in loaders need no TensorFlow; a project's may import it (or build
    tf.data splits), so its native start-up lines are held back here as `import_tensorflow` holds them."""
    from extf.console import quiet_native_logs
    from extf.data import load_dataset
    from extf.models import check_fits_data, prepare_splits
    from extf.models.augmentation import check_augmentation
    from extf.tuning.trial import check_stateful_batches

    with quiet_native_logs():
        splits = prepare_splits(cfg.model, load_dataset(cfg.dataset, cfg.seed, cfg.allow_targets), cfg.allow_targets)
    meta = splits.meta
    check_fits_data(cfg.model, meta, allow_targets=cfg.allow_targets)
    check_stateful_batches(cfg, splits)
    check_augmentation(cfg.augmentation, meta.modality, meta.input_shape, meta.task)
    return splits


def check_produced(cfg: DictConfig, meta, objective: str, objectives: Objectives, build_metrics=True) -> None:
    """The objective and the other validation metrics the study needs are ones the model logs, before any trial
    (a project's model function may compile itself: its trials check that once they have trained). Without
    build_metrics (no TensorFlow yet), only when the metrics are known by name."""
    from extf.models import metric_names

    produced = metric_names(cfg.model, meta, tuple(cfg.get("allow_targets") or ()), build_metrics)
    if produced is None:
        return
    missing = [n for n in [objective, *objectives.metrics(objective)] if n not in produced]
    if missing:
        raise objectives.not_produced(missing[0], objective, produced)


def open_tracker(cfg: DictConfig, experiment_name: str, process=None):
    """The study's tracker, opened once TensorFlow is imported (MLflow itself runs in `process` when given)."""
    import keras_tuner  # noqa: F401 - TensorFlow first

    from extf.tracking.mlflow_tracker import make_tracker

    return process.open() if process is not None else make_tracker(cfg, experiment_name)


def apply_determinism(cfg: DictConfig) -> None:
    if cfg.determinism:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def fatal_cause(e: BaseException) -> ExtfError:
    """The user error inside keras-tuner's FatalError (raised by a trial to stop the search)."""
    cause = e.args[0] if e.args else e
    return cause if isinstance(cause, ExtfError) else ExtfError(f"The search stopped: {cause}")
