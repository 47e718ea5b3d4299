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
    OmegaConfBaseException,
    ValidationError,
)

import extf.config.registry as registry
import extf.config.schema as schema
from extf.config.allowlist import (  # noqa: F401 - TARGET_ALLOWLIST, allowed_prefixes: imported from here too
    TARGET_ALLOWLIST,
    allowed_prefixes,
    check_defined_in_allowlist,
    outside_allowlist,
)
from extf.config.constraints import check_section
from extf.config.instantiate import check_project_module
from extf.errors import ConfigError

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
# the project's own model or dataset function (`resolve` imports its module when it is called, after TensorFlow's
# import for a model): its module must be one that can be found, which is told here without running the project's code
PROJECT_FUNCTIONS = tuple(f"{group}._target_" for group in schema.USER_OPTION_DEFAULTS)
# groups whose option (and so schema) is picked by the section's `name`
GROUPS = ("dataset", "model", "optimizer")


def validate(cfg: DictConfig) -> DictConfig:
    """Check types, unknown keys, allowed values and `_target_`s; return the resolved, typed config."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except InterpolationResolutionError as e:
        raise ConfigError(f"Could not resolve an interpolation in the config: {str(e.msg).splitlines()[0]}. Fix the `${{...}}` "
                          f"reference it names. Received: key={e.full_key}") from None
    _check_top_keys(plain)
    allow_targets = tuple(plain.get("allow_targets") or ())
    top_fields = {f.name for f in dataclasses.fields(schema.TopConf)}
    out: dict[str, Any] = _merge(schema.TopConf, {k: v for k, v in plain.items() if k in top_fields}, prefix="")
    schemas: dict[str, type] = {"": schema.TopConf}
    for group in GROUPS:
        schemas[group], out[group] = _group_option(group, plain.get(group), allow_targets)
    for section, cls in schema.SECTIONS.items():
        schemas[section], out[section] = cls, _merge(cls, plain.get(section) or {}, prefix=section)

    result = OmegaConf.create(out)
    for key in PATH_NAMES:
        check_path_name(key, OmegaConf.select(result, key))
    _check_missing(result)
    for prefix, cls in schemas.items():
        section = out if not prefix else out[prefix]
        check_section(cls, {k: v for k, v in section.items() if k not in GROUPS}, prefix)
    if result.tuner.name == "grid":
        _check_grid(OmegaConf.to_container(result.search_space, resolve=True) or {}, "")
    _check_targets(result)
    _check_callbacks(result)
    return result


def _check_top_keys(plain: dict) -> None:
    known = {f.name for f in dataclasses.fields(schema.TopConf)} | set(GROUPS) | set(schema.SECTIONS)
    for key in plain:
        if key not in known:
            hint = (f" An {key} file must start with the line `# @package _global_` so that its keys land at "
                    "the top of the config." if key in ("experiment", "project") else "")
            raise ConfigError(f"Unknown top-level config key `{key}`. Expected one of: {', '.join(sorted(known))}. "
                              f"Remove it or fix its spelling.{hint} Received: {key}={plain[key]!r}")


def _group_option(group: str, node: Any, allow_targets: tuple) -> tuple[type, dict]:
    """(schema, merged section) of the option a group's section names."""
    if not isinstance(node, dict):
        raise ConfigError(f"Config group `{group}` is missing or not a mapping. Choose one with {group}=NAME. "
                          f"Received: {group}={node!r}")
    if "_target_" in node and group in schema.USER_OPTION_DEFAULTS:  # the project's own callable (allow_targets)
        return _user_option(group, node, allow_targets)
    if group in registry.GROUP_PACKAGES:
        cls = registry.option_module(group, node, allow_targets).Conf
    else:  # optimizers: keras' own, named by `_target_`; the schema says which of their arguments a YAML may set
        cls = schema.OPTIMIZERS.get(node.get("name"))
        if cls is None:
            raise ConfigError(f"Unknown {group} name {node.get('name')!r}. Expected one of: "
                              f"{', '.join(sorted(schema.OPTIMIZERS))}. Set `name:` in the {group} YAML file to one "
                              f"of them. Received: {group}.name={node.get('name')!r}")
    own = {k: v for k, v in node.items() if k != registry.MODULE_KEY}
    merged = _merge(cls, own, prefix=group)
    return cls, ({registry.MODULE_KEY: node[registry.MODULE_KEY], **merged} if registry.MODULE_KEY in node
                 else merged)


def _user_option(group: str, node: dict, allow_targets: tuple) -> tuple[type, dict]:
    name = node.get("name")
    own = set(registry.builtin_options(group)) if group in registry.GROUP_PACKAGES else set()
    if not isinstance(name, str) or not name or name in own:
        taken = f" ({name!r} is extf's own {group})" if name in own else ""
        raise ConfigError(f"The {group} given by `{group}._target_` needs a `name:` of its own{taken}: it names "
                          f"the {group} in MLflow and in the model file. Set `name: my{group}` in its YAML file. "
                          f"Received: {group}.name={name!r}, {group}._target_={node['_target_']!r}")
    base = schema.DatasetConf if group == "dataset" else schema.ModelConf
    return base, {**schema.USER_OPTION_DEFAULTS[group], **node}


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


def _check_grid(space: dict, prefix: str) -> None:
    """tuner=grid enumerates every combination, so a float needs a step (the same rule as extf.tuning.tuner)."""
    for key, spec in space.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(spec, dict) and "type" not in spec:
            _check_grid(spec, path)  # nested keys: `+search_space.model.units=...`
        elif isinstance(spec, dict) and spec["type"] == "float" and not spec.get("step"):
            raise ConfigError(f"tuner=grid needs a finite grid: search_space.{path} is a continuous float. "
                              f"Give it a `step` or make it a choice. Received: search_space.{path}={spec}")


def _check_targets(cfg: DictConfig, path: str = "") -> None:
    node = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    allow_targets = tuple(node.get("allow_targets") or ())
    for key, value in _walk(node, path):
        if key.endswith("_target_") and not (isinstance(value, str)
                                             and value.startswith(allowed_prefixes(allow_targets))):
            raise ConfigError(outside_allowlist(key, value, allow_targets))
        if key.endswith("_target_") and value.startswith(RESOLVED_WHEN_VALIDATED):
            check_defined_in_allowlist(key, value, allow_targets)
        elif key in PROJECT_FUNCTIONS and not value.startswith(TARGET_ALLOWLIST):
            check_project_module(key, value)


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
