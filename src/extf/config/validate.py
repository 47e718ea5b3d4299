"""Validate a composed config before anything heavy runs.

`validate(cfg)` returns a resolved, typed copy of the config or raises `ConfigError` with one message naming the key,
what was expected and the value received. It never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from extf.config import schema
from extf.errors import ConfigError

# `_target_` may only name callables from these packages, and from the ones a project's extf.yaml opts in with
# `allow_targets` (see DESIGN.md, Security).
TARGET_ALLOWLIST = ("keras.", "extf.", "sklearn.")
# config values that become folder names (outputs/<experiment_name>/..., outputs/studies/<experiment_name>-<hash>)
PATH_NAMES = ("experiment_name",)


def check_path_name(key: str, value: Any) -> str:
    """A name that becomes one folder must stay in its parent folder: no separators, no `.` / `..`, not empty."""
    text = str(value)
    if not text.strip() or text in (".", "..") or any(sep in text for sep in ("/", "\\", "\0")):
        raise ConfigError(f"`{key}` becomes a folder name (outputs/<{key}>/...), so it must be one name that stays "
                          f"inside its folder: no '/' or '\\', not '.' or '..', not empty. Use letters, digits, "
                          f"'-', '_' or '.', e.g. {key}=my-study. Received: {key}={value!r}")
    return text


def register_resolvers() -> None:
    """`${extf_path_name:${experiment_name}}` in conf/hydra: Hydra's run directory refuses names that would
    leave outputs/ before it is created."""
    if not OmegaConf.has_resolver("extf_path_name"):
        OmegaConf.register_new_resolver("extf_path_name", lambda v: check_path_name("experiment_name", v))
# targets whose modules import without TensorFlow are resolved here too (keras.* ones when instantiated): a name
# under the allowlist may still reach a callable outside it through a module's imports (`extf.cli.os.system`)
RESOLVED_WHEN_VALIDATED = ("extf.", "sklearn.")

GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": schema.DATASETS,
    "model": schema.MODELS,
    "optimizer": schema.OPTIMIZERS,
}
PLAIN_SECTIONS: dict[str, type] = {
    "trainer": schema.TrainerConf,
    "augmentation": schema.AugmentationConf,
    "evaluation": schema.EvaluationConf,
    "tracking": schema.TrackingConf,
    "tuner": schema.TunerConf,
    "paths": schema.PathsConf,
}

ACTIVATIONS = {
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu", "softplus",
    "softsign", "hard_sigmoid", "leaky_relu", "relu6", "mish", "exponential",
}
INITIALIZERS = {
    "uniform", "normal", "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_uniform", "random_normal", "truncated_normal",
    "variance_scaling",
}
CHOICES: dict[str, set[str]] = {
    "model.activation": ACTIVATIONS,
    "model.kernel_initializer": INITIALIZERS,
    "model.padding": {"valid", "same"},
    "model.data_format": {"channels_last", "channels_first"},
    "model.cell": {"simple_rnn", "gru", "lstm"},
    "model.upsampling": {"transpose", "nearest", "bilinear"},
    "model.kind": {"dense", "conv"},
    "model.pooling": {"global_average", "flatten"},
    "dataset.task": {"auto", "binary", "multiclass", "regression"},
    "dataset.features": {"index", "pitch_duration"},
    "dataset.color_mode": {"grayscale", "rgb"},
    "tuner.objective.direction": {"auto", "min", "max"},
    "tuner.name": {"random", "bayesian", "hyperband", "grid"},
}
POSITIVE_INTS = [
    "trainer.epochs", "trainer.batch_size", "model.units", "model.units_1", "model.units_2", "model.units_3",
    "model.num_layers", "model.filters", "model.num_blocks", "model.depth", "model.latent_dim",
    "model.kernel_size", "model.pool_size", "dataset.window", "dataset.repeats", "dataset.height", "dataset.width", "dataset.n_points", "dataset.n_samples",
    "dataset.image_size", "dataset.max_shapes", "tuner.max_trials",
    "tuner.executions_per_trial", "tuner.max_epochs", "tuner.hyperband_iterations", "tuner.num_initial_points",
    "tuner.max_consecutive_failed_trials", "tuner.threads_per_worker", "tracking.request_timeout",
]
NON_NEGATIVE_INTS = ["model.dense_units", "dataset.max_categories", "trainer.verbosity", "tuner.workers", "tuner.oracle_port",
                     "tuner.max_worker_restarts", "tracking.request_retries"]
FRACTIONS = ["model.dropout", "model.batch_norm_momentum", "dataset.val_fraction", "dataset.test_fraction"]  # in [0, 1)
NON_NEGATIVE_NUMBERS = ["dataset.noise"]
MINIMUMS = {"dataset.image_size": (8, "generated shapes need at least 8x8 pixels to be told apart"),
            "tuner.factor": (2, "hyperband keeps 1/factor of the trials in each round")}
CHOICES_ONLY_FOR = {"dataset.features": "nabiya"}  # csv's dataset.features is a list of column names


def validate(cfg: DictConfig) -> DictConfig:
    """Check types, unknown keys, allowed values and `_target_`s; return the resolved, typed config."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except InterpolationResolutionError as e:
        raise ConfigError(f"Could not resolve an interpolation in the config: {str(e.msg).splitlines()[0]}. Fix the `${{...}}` "
                          f"reference it names. Received: key={e.full_key}") from None
    out: dict[str, Any] = {}
    top_fields = {f.name for f in dataclasses.fields(schema.TopConf)}
    known = top_fields | set(GROUP_SCHEMAS) | set(PLAIN_SECTIONS)
    for key in plain:
        if key not in known:
            hint = (f" An {key} file must start with the line `# @package _global_` so that its keys land at "
                    "the top of the config." if key in ("experiment", "project") else "")
            raise ConfigError(f"Unknown top-level config key `{key}`. Expected one of: {', '.join(sorted(known))}. "
                              f"Remove it or fix its spelling.{hint} Received: {key}={plain[key]!r}")
    top = {k: v for k, v in plain.items() if k in top_fields}
    out.update(_merge(schema.TopConf, top, prefix=""))

    for group, registry in GROUP_SCHEMAS.items():
        node = plain.get(group)
        if not isinstance(node, dict):
            raise ConfigError(f"Config group `{group}` is missing or not a mapping. Choose one with {group}=NAME "
                              f"(options: {', '.join(sorted(registry))}). Received: {group}={node!r}")
        if "_target_" in node and group in USER_OPTION_DEFAULTS:  # the project's own code (allow_targets)
            out[group] = _user_option(group, node)
            continue
        name = node.get("name")
        if name not in registry:
            raise ConfigError(f"Unknown {group} name {name!r}. Expected one of: {', '.join(sorted(registry))}. "
                              f"Set `name:` in the {group} YAML file to one of them. Received: {group}.name={name!r}")
        out[group] = _merge(registry[name], node, prefix=group)

    for section, cls in PLAIN_SECTIONS.items():
        out[section] = _merge(cls, plain.get(section) or {}, prefix=section)

    result = OmegaConf.create(out)
    for key in PATH_NAMES:
        check_path_name(key, OmegaConf.select(result, key))
    _check_missing(result)
    _check_values(result)
    _check_targets(result)
    _check_callbacks(result)
    return result


# a dataset or model given as a project's callable (`_target_`): its own keys are its arguments; these are extf's
USER_OPTION_DEFAULTS = {
    "dataset": {"val_fraction": 0.16, "test_fraction": 0.2},
    "model": {"loss": None, "metrics": None},
}


def _user_option(group: str, node: dict) -> dict:
    name = node.get("name")
    if not isinstance(name, str) or not name or name in GROUP_SCHEMAS[group]:
        taken = f" ({name!r} is extf's own {group})" if name in GROUP_SCHEMAS[group] else ""
        raise ConfigError(f"The {group} given by `{group}._target_` needs a `name:` of its own{taken}: it names "
                          f"the {group} in MLflow and in the model file. Set `name: my{group}` in its YAML file. "
                          f"Received: {group}.name={name!r}, {group}._target_={node['_target_']!r}")
    return {**USER_OPTION_DEFAULTS[group], **node}


def _merge(cls: type, node: dict, prefix: str) -> dict:
    dotted = f"{prefix}." if prefix else ""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), node)
    except ConfigKeyError as e:
        key = str(e.key) if e.key is not None else "?"
        allowed = ", ".join(f.name for f in dataclasses.fields(cls))
        what = f" for {prefix} {node.get('name')!r}" if isinstance(node, dict) and "name" in node else ""
        raise ConfigError(f"Unknown config key `{dotted}{key}`{what}. Expected one of: {allowed}. Remove it or fix "
                          f"its spelling. Received: {dotted}{key}={node.get(key)!r}") from None
    except ValidationError as e:
        key = e.full_key or str(e.key)
        expected = _field_type(cls, key)
        raise ConfigError(f"Wrong type for `{dotted}{key}`: expected {expected}. Fix the value in the YAML file or "
                          f"the command-line override. Received: {dotted}{key}={_get(node, key)!r}") from None
    except OmegaConfBaseException as e:  # pragma: no cover - other OmegaConf problems, same message shape
        raise ConfigError(f"Invalid config section `{prefix}`: {e.msg}. Received: {prefix}={node!r}") from None
    return OmegaConf.to_container(merged, resolve=False)


def _field_type(cls: type, dotted: str) -> str:
    first = dotted.split(".")[0]
    for f in dataclasses.fields(cls):
        if f.name == first:
            return str(f.type).replace("Optional[", "").rstrip("]") if "Optional" in str(f.type) else str(f.type)
    return "a different type"


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _check_missing(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        sets = " ".join(f"{k}=..." for k in missing)
        raise ConfigError(f"Missing required config value(s): {', '.join(missing)}. Set them on the command line, "
                          f"e.g. `extf train {sets}`, or in the YAML file. Received: "
                          + ", ".join(f"{k}=???" for k in missing))


def _lookup(cfg: DictConfig, dotted: str) -> tuple[bool, Any]:
    try:
        value = OmegaConf.select(cfg, dotted, throw_on_missing=True)
    except MissingMandatoryValue:
        return False, None
    return value is not None, value


def _check_values(cfg: DictConfig) -> None:
    for key in POSITIVE_INTS:
        present, value = _lookup(cfg, key)
        if present and value <= 0:
            raise ConfigError(f"`{key}` must be a positive integer. Received: {key}={value}")
    for key in NON_NEGATIVE_INTS:
        present, value = _lookup(cfg, key)
        if present and value < 0:
            raise ConfigError(f"`{key}` must be an integer >= 0. Received: {key}={value}")
    for key in NON_NEGATIVE_NUMBERS:
        present, value = _lookup(cfg, key)
        if present and not value >= 0:
            raise ConfigError(f"`{key}` must be a number >= 0. Received: {key}={value}")
    for key, (minimum, why) in MINIMUMS.items():
        present, value = _lookup(cfg, key)
        if present and value < minimum:
            raise ConfigError(f"`{key}` must be at least {minimum}: {why}. Received: {key}={value}")
    for key in FRACTIONS:
        present, value = _lookup(cfg, key)
        if present and not 0.0 <= value < 1.0:
            raise ConfigError(f"`{key}` must be a fraction in [0, 1). Received: {key}={value}")
    for key, allowed in CHOICES.items():
        present, value = _lookup(cfg, key)
        if key in CHOICES_ONLY_FOR and OmegaConf.select(cfg, key.split(".")[0] + ".name") != CHOICES_ONLY_FOR[key]:
            continue
        if present and value not in allowed:
            raise ConfigError(f"`{key}` must be one of: {', '.join(sorted(allowed))}. Received: {key}={value!r}")
    ds = cfg.dataset
    if ds.val_fraction + ds.test_fraction >= 0.9:
        raise ConfigError("dataset.val_fraction + dataset.test_fraction must leave at least 10% of the data for "
                          "training. Received: dataset.val_fraction="
                          f"{ds.val_fraction}, dataset.test_fraction={ds.test_fraction}")
    if ds.test_fraction <= 0 or ds.val_fraction <= 0:
        raise ConfigError("Both dataset.val_fraction and dataset.test_fraction must be > 0: the tuner scores on the "
                          "validation split and the final model is tested once on the test split. Received: "
                          f"dataset.val_fraction={ds.val_fraction}, dataset.test_fraction={ds.test_fraction}")
    threshold = cfg.evaluation.threshold
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"`evaluation.threshold` must be in [0, 1]: it is the probability above which a binary "
                          f"prediction is the positive class. Received: evaluation.threshold={threshold}")
    lr = cfg.optimizer.learning_rate
    if not lr > 0:
        raise ConfigError(f"`optimizer.learning_rate` must be > 0. Received: optimizer.learning_rate={lr}")
    if cfg.tuner.name == "grid":
        _check_grid(OmegaConf.to_container(cfg.search_space, resolve=True) or {}, "")


def _check_grid(space: dict, prefix: str) -> None:
    """tuner=grid enumerates every combination, so a float needs a step (the same rule as extf.tuning.tuner)."""
    for key, spec in space.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(spec, dict) and "type" not in spec:
            _check_grid(spec, path)  # nested keys: `+search_space.model.units=...`
        elif isinstance(spec, dict) and spec["type"] == "float" and not spec.get("step"):
            raise ConfigError(f"tuner=grid needs a finite grid: search_space.{path} is a continuous float. "
                              f"Give it a `step` or make it a choice. Received: search_space.{path}={spec}")


def allowed_prefixes(allow_targets=()) -> tuple[str, ...]:
    """extf's allowlist and the packages the project opts in (cfg.allow_targets, from its extf.yaml)."""
    return TARGET_ALLOWLIST + tuple(f"{p}." for p in allow_targets)


def outside_allowlist(key: str, value: Any, allow_targets=()) -> str:
    allowed = ", ".join(p + "*" for p in allowed_prefixes(allow_targets))
    return (f"`{key}` names a callable outside the allowlist. Only targets under {allowed} may be instantiated "
            f"from a config; to run your project's own code, list its package in allow_targets in the project's "
            f"extf.yaml (allow_targets: [myproj]). Received: {key}={value!r}")


def _check_targets(cfg: DictConfig, path: str = "") -> None:
    node = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    allow_targets = tuple(node.get("allow_targets") or ())
    for key, value in _walk(node, path):
        if key.endswith("_target_") and not (isinstance(value, str)
                                             and value.startswith(allowed_prefixes(allow_targets))):
            raise ConfigError(outside_allowlist(key, value, allow_targets))
        if key.endswith("_target_") and value.startswith(RESOLVED_WHEN_VALIDATED):
            from extf.config.instantiate import check_defined_in_allowlist

            check_defined_in_allowlist(key, value, allow_targets)


def _walk(node: Any, path: str):
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, v
            yield from _walk(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _check_callbacks(cfg: DictConfig) -> None:
    for name, spec in (cfg.callbacks or {}).items():
        if spec is None:
            continue  # `callbacks.NAME=null` switches a callback off
        if not isinstance(spec, DictConfig) or "_target_" not in spec:
            raise ConfigError(f"Callback `callbacks.{name}` must be a mapping with a `_target_` (for example "
                              f"keras.callbacks.EarlyStopping). Remove it with `~callbacks.{name}`. "
                              f"Received: callbacks.{name}={spec!r}")
