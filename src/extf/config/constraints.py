"""Declarative constraints on config values, checked by one function.

Each schema (a dataclass of `extf.config.schema`, or the `Conf` of a model family or dataset module) declares its
keys' allowed values beside its fields, as scikit-learn's `_parameter_constraints` do:

    @dataclass
    class Conf(ModelConf):
        units: int
        activation: str
        constraints: ClassVar = {"units": POSITIVE_INT, "activation": OneOf(ACTIVATIONS)}
        checks: ClassVar = (some_rule,)   # rules over several keys of the section: fn(section, prefix)

A schema with a config key named `constraints` itself (`tuner.constraints`) names that dict `key_constraints`.

`check_section(cls, values, prefix)` applies a schema's constraints (its bases' included) to a merged section; a
`None` value means "not set" and is never checked (types and required-ness are the schema's: OmegaConf checks them
when the YAML is merged into it). No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from extf.errors import ConfigError

FIX = "Fix the value in the YAML file or the command-line override."


@dataclass(frozen=True)
class Interval:
    """A number between `low` and `high` (None: unbounded); `closed` says which ends are allowed."""

    low: float | None
    high: float | None
    expected: str  # how the message says it: "a positive integer", "a fraction in [0, 1)"
    closed: str = "both"  # both | left | right | neither

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        low_ok = self.low is None or value > self.low or (value == self.low and self.closed in ("both", "left"))
        high_ok = self.high is None or value < self.high or (value == self.high and self.closed in ("both", "right"))
        return low_ok and high_ok

    def message(self, key: str, value: Any) -> str:
        return f"`{key}` must be {self.expected}. {FIX} Received: {key}={value}"


@dataclass(frozen=True)
class OneOf:
    """One of a set of names."""

    values: frozenset[str]

    def __init__(self, values: Iterable[str]):
        object.__setattr__(self, "values", frozenset(values))

    def allows(self, value: Any) -> bool:
        return value in self.values

    def message(self, key: str, value: Any) -> str:
        return f"`{key}` must be one of: {', '.join(sorted(self.values))}. {FIX} Received: {key}={value!r}"


def at_least(minimum: int, why: str) -> Interval:
    """An integer >= `minimum`; `why` tells the reader the reason."""
    return Interval(minimum, None, f"at least {minimum}: {why}")


POSITIVE_INT = Interval(1, None, "a positive integer")
NON_NEGATIVE_INT = Interval(0, None, "an integer >= 0")
NON_NEGATIVE = Interval(0, None, "a number >= 0")
POSITIVE = Interval(0, None, "> 0", closed="neither")
FRACTION = Interval(0, 1, "a fraction in [0, 1)", closed="left")

ACTIVATIONS = OneOf({
    "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu", "softplus",
    "softsign", "hard_sigmoid", "leaky_relu", "relu6", "mish", "exponential",
})
INITIALIZERS = OneOf({
    "uniform", "normal", "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_uniform", "random_normal", "truncated_normal",
    "variance_scaling",
})

Constraint = Interval | OneOf
Rule = Callable[[dict, str], None]  # a check over several keys of one section: raises ConfigError


def constraints_of(cls: type) -> tuple[dict[str, Constraint], tuple[Rule, ...]]:
    """The key constraints and section rules a schema declares, its bases' first (a subclass may override a key)."""
    keys: dict[str, Constraint] = {}
    rules: list[Rule] = []
    for klass in reversed(cls.__mro__):
        declared = vars(klass).get("key_constraints", vars(klass).get("constraints"))
        keys.update(declared if isinstance(declared, dict) else {})
        rules += [r for r in vars(klass).get("checks", ()) if r not in rules]
    return keys, tuple(rules)


def check_section(cls: type, values: dict, prefix: str) -> None:
    """Raise ConfigError with one message for the first value of `values` (a merged section) that `cls`'s
    constraints refuse: what was wrong, what was expected, how to fix it, the value received."""
    keys, rules = constraints_of(cls)
    dotted = f"{prefix}." if prefix else ""
    for key, constraint in keys.items():
        value = values.get(key)
        if value is not None and not constraint.allows(value):
            raise ConfigError(constraint.message(f"{dotted}{key}", value))
    for rule in rules:
        rule(values, prefix)
    for key, kind in _nested(cls).items():  # a section inside the section (tuner.objective)
        if isinstance(values.get(key), dict):
            check_section(kind, values[key], f"{dotted}{key}")


def _nested(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}
