"""Search spaces: YAML specs keyed by config path -> keras-tuner hyperparameters -> trial configs.

A spec is one of
    {type: int, low, high, step?, sampling?}   {type: float, low, high, step?, sampling?: linear|log}
    {type: choice, values: [...]}              {type: bool}              {type: fixed, value}
and may carry `when: {parent.path: [values]}`: the parameter exists only while the parent takes one of those values
(keras-tuner's conditional scopes), e.g. the units of a third layer only when num_layers is 3.
Hyperparameter names are the config paths, so MLflow shows the same dotted names for trials and studies.
Parsing and validation import nothing heavy; `declare` needs keras-tuner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError

TYPES = ("int", "float", "choice", "bool", "fixed")
KEYS = {
    "int": {"low", "high", "step", "sampling"},
    "float": {"low", "high", "step", "sampling"},
    "choice": {"values"},
    "bool": set(),
    "fixed": {"value"},
}


@dataclass(frozen=True)
class Spec:
    path: str
    type: str
    args: dict
    when: dict | None = None  # {parent_path: [values]}


def parse_space(space: Any, cfg: DictConfig) -> list[Spec]:
    """Check every spec against its type and the config; return them parents first."""
    if space is None:
        return []
    if isinstance(space, DictConfig):
        space = OmegaConf.to_container(space, resolve=True)
    if not isinstance(space, dict):
        raise ConfigError(f"search_space must map config paths to specs, e.g. `model.units: {{type: int, low: 32, "
                          f"high: 256}}`. Received: search_space={space!r}")
    specs = [_parse_one(path, raw, cfg) for path, raw in _flatten_paths(space).items()]
    names = {s.path for s in specs}
    for s in specs:
        for parent in (s.when or {}):
            if parent not in names:
                raise ConfigError(f"search_space.{s.path}.when names {parent!r}, which is not itself in the search "
                                  f"space; a condition must refer to another searched parameter. "
                                  f"Received: when={s.when}")
    # parents before children, so keras-tuner knows the parent when it opens a conditional scope
    return sorted(specs, key=lambda s: 1 if s.when else 0)


def _flatten_paths(space: dict, prefix: str = "") -> dict:
    """Accept nested keys too (`model: {units: {...}}`, what `+search_space.model.units=...` creates)."""
    out = {}
    for key, value in space.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and "type" not in value and value and all(isinstance(v, dict) for v in
                                                                               value.values()):
            out.update(_flatten_paths(value, path))
        else:
            out[path] = value
    return out


def _parse_one(path: str, raw: Any, cfg: DictConfig) -> Spec:
    where = f"search_space.{path}"
    if OmegaConf.select(cfg, path, default="__missing__") == "__missing__":
        raise ConfigError(f"{where}: `{path}` is not a key of the composed config, so it cannot be searched. "
                          f"Expected a config path such as model.units or optimizer.learning_rate. "
                          f"Received: {path!r}")
    if not isinstance(raw, dict) or "type" not in raw:
        raise ConfigError(f"{where} must be a mapping with a `type` ({', '.join(TYPES)}). Received: {raw!r}")
    kind = raw["type"]
    if kind not in TYPES:
        raise ConfigError(f"{where}.type must be one of: {', '.join(TYPES)}. Received: type={kind!r}")
    args = {k: v for k, v in raw.items() if k not in ("type", "when")}
    unknown = set(args) - KEYS[kind]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind}. Expected: "
                          f"{', '.join(sorted(KEYS[kind])) or 'none'}. Received: {raw!r}")
    if kind in ("int", "float"):
        for key in ("low", "high"):
            if key not in args or isinstance(args[key], bool) or not isinstance(args[key], (int, float)):
                raise ConfigError(f"{where}.{key} is required and must be a number. Received: {key}={args.get(key)!r}")
        if kind == "int" and not all(float(args[k]).is_integer() for k in ("low", "high")):
            raise ConfigError(f"{where}: type int needs integer low and high. Received: low={args['low']}, "
                              f"high={args['high']}")
        if args["low"] > args["high"]:
            raise ConfigError(f"{where}: low must be <= high. Received: low={args['low']}, high={args['high']}")
        sampling = args.get("sampling", "linear")
        if sampling not in ("linear", "log", "reverse_log"):
            raise ConfigError(f"{where}.sampling must be linear, log or reverse_log. Received: sampling={sampling!r}")
        if sampling != "linear" and args["low"] <= 0:
            raise ConfigError(f"{where}: {sampling} sampling needs low > 0. Received: low={args['low']}")
        if "step" in args and args["step"] is not None and args["step"] <= 0:
            raise ConfigError(f"{where}.step must be > 0. Received: step={args['step']}")
    if kind == "choice":
        values = args.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.values must be a non-empty list. Received: values={values!r}")
        if len({type(v) for v in values}) > 1:
            raise ConfigError(f"{where}.values must all have one type (keras-tuner's Choice). Received: {values}")
    if kind == "fixed" and "value" not in args:
        raise ConfigError(f"{where}: type fixed needs `value`. Received: {raw!r}")
    when = raw.get("when")
    if when is not None and (not isinstance(when, dict) or not all(isinstance(v, list) for v in when.values())):
        raise ConfigError(f"{where}.when must map a parent path to a list of values, e.g. "
                          f"`when: {{model.num_layers: [3]}}`. Received: when={when!r}")
    return Spec(path, kind, args, when)


def declare(specs: list[Spec]):
    """A keras_tuner.HyperParameters holding the whole space, declared up front so every tuner sees it."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for s in specs:
        if s.when:
            (parent, values), = s.when.items()
            with hp.conditional_scope(parent, values):
                _declare_one(hp, s)
        else:
            _declare_one(hp, s)
    return hp


def _declare_one(hp, s: Spec) -> None:
    a = s.args
    if s.type == "int":
        hp.Int(s.path, int(a["low"]), int(a["high"]), step=a.get("step") or 1, sampling=a.get("sampling", "linear"))
    elif s.type == "float":
        hp.Float(s.path, float(a["low"]), float(a["high"]), step=a.get("step"), sampling=a.get("sampling", "linear"))
    elif s.type == "choice":
        hp.Choice(s.path, a["values"])
    elif s.type == "bool":
        hp.Boolean(s.path)
    else:
        hp.Fixed(s.path, a["value"])


def apply_hyperparameters(cfg: DictConfig, hp) -> DictConfig:
    """A copy of `cfg` with each active hyperparameter's value written at its config path."""
    if isinstance(hp, dict):
        values = hp
    else:
        values = {k: v for k, v in hp.values.items() if hp.is_active(k)}
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for path, value in values.items():
        if path.startswith("tuner/"):  # keras-tuner's own bookkeeping (hyperband epochs, brackets)
            continue
        OmegaConf.update(out, path, value, merge=False)
    return out
