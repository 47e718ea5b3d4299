"""Structured-config schemas: the type and the allowed values of every key; the defaults are in the YAML files.

A schema is a dataclass whose fields have no default: OmegaConf gives each `???` (required), so a key a YAML file
leaves out is reported as missing, and the value a YAML file gives is its only default. Merging the composed YAML
into a schema rejects unknown keys and wrong types; `constraints` (per key) and `checks` (over several keys) beside
the fields say which values are allowed, checked by `extf.config.constraints.check_section`.

The config groups whose options are code (model families, datasets) take their schemas from the option's own module
(`extf.config.registry`); the schemas here are the ones of plain sections and the bases those modules extend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from extf.config.constraints import (
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Interval,
    OneOf,
    at_least,
)
from extf.config.duration import parse_duration
from extf.config.objectives import objectives_fit
from extf.errors import ConfigError


# --------------------------------------------------------------------------- bases of the code options
def leave_training_data(section: dict, prefix: str) -> None:
    """The validation and test splits must both exist and leave at least 10% of the data for training."""
    val, test = section["val_fraction"], section["test_fraction"]
    if val + test >= 0.9:
        raise ConfigError("dataset.val_fraction + dataset.test_fraction must leave at least 10% of the data for "
                          "training. Lower one of them, e.g. dataset.val_fraction=0.16 dataset.test_fraction=0.2. "
                          f"Received: dataset.val_fraction={val}, dataset.test_fraction={test}")
    if test <= 0 or val <= 0:
        raise ConfigError("Both dataset.val_fraction and dataset.test_fraction must be > 0: the tuner scores on the "
                          "validation split and the final model is tested once on the test split. Set both, e.g. "
                          "to 0.16 and 0.2. Received: "
                          f"dataset.val_fraction={val}, dataset.test_fraction={test}")


@dataclass
class DatasetConf:
    """Keys every dataset has (a dataset module's `Conf` extends it)."""

    name: str
    val_fraction: float
    test_fraction: float
    constraints: ClassVar = {"val_fraction": FRACTION, "test_fraction": FRACTION}
    checks: ClassVar = (leave_training_data,)


@dataclass
class ModelConf:
    """Keys every model family has (a family module's `Conf` extends it)."""

    name: str
    loss: str | None  # null: follows the task
    metrics: list[Any] | None  # null: follows the task; names or `_target_` specs of metric classes


# a dataset or model given as the project's callable (`_target_`): its own keys are its arguments; these are extf's
# and may be left out of its YAML file
USER_OPTION_DEFAULTS = {
    "dataset": {"val_fraction": 0.16, "test_fraction": 0.2},
    "model": {"loss": None, "metrics": None},
}


# --------------------------------------------------------------------------- optimizers
@dataclass
class OptimizerConf:
    _target_: str
    name: str
    learning_rate: float
    weight_decay: float | None  # Keras' decoupled weight decay (every Keras optimizer takes it); null: none
    constraints: ClassVar = {"learning_rate": POSITIVE, "weight_decay": NON_NEGATIVE}


@dataclass
class AdamConf(OptimizerConf):
    beta_1: float
    beta_2: float
    epsilon: float
    amsgrad: bool


@dataclass
class SgdConf(OptimizerConf):
    momentum: float
    nesterov: bool


@dataclass
class RmspropConf(OptimizerConf):
    rho: float
    momentum: float
    epsilon: float


@dataclass
class AdagradConf(OptimizerConf):
    initial_accumulator_value: float
    epsilon: float


OPTIMIZERS: dict[str, type] = {"adam": AdamConf, "sgd": SgdConf, "rmsprop": RmspropConf, "adagrad": AdagradConf}


# --------------------------------------------------------------------------- the rest
@dataclass
class TrainerConf:
    epochs: int
    batch_size: int
    verbosity: int  # Keras fit verbose: 0 silent, 1 progress bar, 2 one line per epoch
    shuffle: bool  # ignored (False) for stateful RNNs, whose samples must stay in order
    constraints: ClassVar = {"epochs": POSITIVE_INT, "batch_size": POSITIVE_INT, "verbosity": NON_NEGATIVE_INT}


@dataclass
class AugmentationConf:
    name: str  # none | image (ImageDataGenerator options as Keras preprocessing layers, training only)
    rotation_range: float  # degrees, random angle in [-r, r]
    width_shift_range: float  # fraction of the width, in [0, 1)
    height_shift_range: float  # fraction of the height, in [0, 1)
    shear_range: float  # radians, random shear angle in [-s, s]
    zoom_range: float  # zoom factor in [1 - x, 1 + x], x in [0, 1)
    horizontal_flip: bool
    vertical_flip: bool
    rescale: float | None  # pixel multiplier, applied in training and inference
    fill_mode: str  # nearest | constant | reflect | wrap
    cval: float  # fill value for fill_mode=constant
    seed: int | None


@dataclass
class EvaluationConf:
    threshold: float  # decision threshold of binary tasks
    plots: bool  # ROC, PR, confusion matrix / predicted vs actual PNGs on the study's parent run
    baseline: bool  # a scikit-learn baseline beside the study (extf.evaluation.baseline)
    constraints: ClassVar = {"threshold": Interval(0, 1, "in [0, 1]: it is the probability above which a binary "
                                                         "prediction is the positive class")}


@dataclass
class TrackingConf:
    name: str
    enabled: bool
    tracking_uri: str | None
    artifact_root: str | None
    log_model: bool  # log the MLflow Keras model (signature + input example)
    # an MLflow server (http:// URIs): how long to wait for an answer and how often to retry before giving up
    request_timeout: int
    request_retries: int
    constraints: ClassVar = {"request_timeout": POSITIVE_INT, "request_retries": NON_NEGATIVE_INT}


@dataclass
class ObjectiveConf:
    name: str  # auto: val_accuracy (classification), val_mean_iou (segmentation), val_loss (regression)
    direction: str  # auto | min | max
    constraints: ClassVar = {"direction": OneOf({"auto", "min", "max"})}


TUNER_KEYS = {"random": (), "grid": (), "bayesian": ("alpha", "beta"), "hyperband": ("factor", "hyperband_iterations"),
              "tpe": (), "cmaes": (), "nsga2": ()}
PRUNING_RULES = ("none", "median", "asha")
NO_POLICIES = ("grid", "hyperband")  # an exhaustive grid, and hyperband's own budget schedule: no pruning, no budget


def tuner_keys_set(section: dict, prefix: str) -> None:
    """A tuner's own keys are set (they have no value unless its YAML file gives one)."""
    unset = [k for k in TUNER_KEYS.get(section["name"], ()) if section.get(k) is None]
    if unset:
        raise ConfigError(f"tuner={section['name']} needs {', '.join(f'tuner.{k}' for k in unset)}: set them in "
                          f"its YAML file (conf/tuner/{section['name']}.yaml) or on the command line. Received: "
                          + ", ".join(f"tuner.{k}=None" for k in unset))


def search_policies_fit(section: dict, prefix: str) -> None:
    """Pruning and a time budget go with the tuners that choose trials one by one; the budget is a duration."""
    name = section["name"]
    if section.get("pruning", "none") != "none" and name in NO_POLICIES:
        raise ConfigError(f"tuner.pruning={section['pruning']} does not go with tuner={name}: "
                          + ("grid search tries every combination, so none may stop early"
                             if name == "grid" else "hyperband stops trials early itself (its brackets)")
                          + ". Use tuner=random, bayesian, tpe or cmaes, or tuner.pruning=none. Received: "
                          f"tuner.name={name!r}, tuner.pruning={section['pruning']!r}")
    parse_duration(section.get("time_budget"))
    if section.get("cv_folds") == 1:
        raise ConfigError("tuner.cv_folds must be 0 (off: one validation split) or a number of folds >= 2 (each "
                          "trial trains once per fold). Received: tuner.cv_folds=1")
    if section.get("cv_folds") and name == "hyperband":
        raise ConfigError(f"tuner.cv_folds does not go with tuner=hyperband, whose rounds continue a trial's weights "
                          f"(one model per trial). Use tuner=random, bayesian, tpe or cmaes, or tuner.cv_folds=0. "
                          f"Received: tuner.cv_folds={section['cv_folds']}")
    if section.get("time_budget") is not None and name == "hyperband":
        raise ConfigError(f"tuner.time_budget does not go with tuner=hyperband, whose brackets plan the trials' "
                          f"epochs ahead. Use tuner=random, bayesian, tpe or cmaes, or tuner.time_budget=null. "
                          f"Received: tuner.time_budget={section['time_budget']!r}")


@dataclass
class TunerConf:
    """One schema for every tuner; the keys only one tuner reads may be left out of the others' YAML files."""

    name: str
    max_trials: int
    executions_per_trial: int
    seed: int | None  # null: the top-level seed
    overwrite: bool
    objective: ObjectiveConf
    max_retries_per_trial: int
    max_consecutive_failed_trials: int
    # distributed search (keras-tuner's chief oracle + worker processes); 0 = one process
    workers: int
    oracle_host: str  # where the chief oracle listens; 0.0.0.0 only to let other machines in
    oracle_port: int  # 0: a free port
    threads_per_worker: int | None  # TensorFlow intra/inter-op threads per worker (null: cores / workers)
    max_worker_restarts: int  # a worker killed by a signal is restarted (its trial runs again) this often
    # search policies (extf.tuning.pruning, extf.tuning.budget)
    pruning: str  # none | median | asha
    pruning_warmup_epochs: int  # median: no pruning before this many epochs; asha: the first rung
    pruning_min_trials: int  # trials to compare with before any is pruned
    pruning_factor: int  # asha: keep the best 1/factor at each rung
    time_budget: Any  # seconds, or "30m", "2h"; null: no budget
    cv_folds: int  # 0: one validation split; K >= 2: each trial scored by K-fold cross-validation (extf.data.folds)
    cv_method: str  # auto (stratified for classes, else kfold) | stratified | kfold | time_series
    # several objectives (extf.config.objectives): [] = tuner.objective alone
    objectives: list[Any]  # e.g. [auto, params] or [val_accuracy: max, latency_ms: min]; the first is ranked by
    constraints: list[str]  # e.g. ["params <= 50000"]: the tested trial must meet them
    select: str  # first: the best first objective among the trials that meet the constraints
    # one tuner's own keys, in its YAML file only: absent (null) for the others, so they may be left out
    num_initial_points: int | None = None  # bayesian; null: 3 x the number of hyperparameters
    alpha: float | None = None  # bayesian
    beta: float | None = None  # bayesian
    max_epochs: int | None = None  # hyperband: epochs per trial come from the bracket (null: trainer.epochs)
    factor: int | None = None  # hyperband
    hyperband_iterations: int | None = None  # hyperband
    key_constraints: ClassVar = {  # named so: `constraints` is one of the tuner's keys
        "name": OneOf(TUNER_KEYS),
        "max_trials": POSITIVE_INT, "executions_per_trial": POSITIVE_INT, "max_retries_per_trial": NON_NEGATIVE_INT,
        "max_consecutive_failed_trials": POSITIVE_INT, "threads_per_worker": POSITIVE_INT,
        "workers": NON_NEGATIVE_INT, "oracle_port": NON_NEGATIVE_INT, "max_worker_restarts": NON_NEGATIVE_INT,
        "num_initial_points": POSITIVE_INT, "max_epochs": POSITIVE_INT, "hyperband_iterations": POSITIVE_INT,
        "factor": at_least(2, "hyperband keeps 1/factor of the trials in each round"),
        "pruning": OneOf(PRUNING_RULES), "pruning_warmup_epochs": NON_NEGATIVE_INT,
        "pruning_min_trials": POSITIVE_INT,
        "pruning_factor": at_least(2, "asha keeps the best 1/factor of the trials at each rung"),
        "cv_folds": NON_NEGATIVE_INT, "cv_method": OneOf(("auto", "stratified", "kfold", "time_series")),
    }
    checks: ClassVar = (tuner_keys_set, search_policies_fit, objectives_fit)


@dataclass
class PathsConf:
    root_dir: str
    mlruns_dir: str
    output_dir: str  # Hydra's run directory (logs, .hydra/)
    study_dir: str | None  # tuner state + best model; set by the CLI (stable per study, for resume)


@dataclass
class TopConf:
    """Keys at the top of config.yaml; groups are checked with their own schemas."""

    seed: int
    experiment_name: str
    determinism: bool  # tf.config.experimental.enable_op_determinism()
    command: str
    run_id: str | None  # evaluate / predict: the study's parent run
    init_from: str | None  # train / tune: start from this study's model weights (the notes' retraining)
    input: str | None  # predict: a .csv, a .npy or a folder of images
    output: str | None  # predict: where the predictions CSV goes
    unsafe_load: bool  # evaluate / predict: load .keras files with safe_mode=False (Lambda layers run code)
    allow_targets: list[str]  # the project's packages `_target_` may name (extf.yaml)
    search_space: dict[str, Any]
    callbacks: dict[str, Any]


# sections with one schema each (the groups `dataset`, `model`, `optimizer` and `tuner` pick theirs by `name`)
SECTIONS: dict[str, type] = {
    "trainer": TrainerConf,
    "augmentation": AugmentationConf,
    "evaluation": EvaluationConf,
    "tracking": TrackingConf,
    "tuner": TunerConf,
    "paths": PathsConf,
}
