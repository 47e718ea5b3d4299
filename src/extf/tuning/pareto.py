"""Several objectives: the declared list, constraints on measures, the Pareto front and the rule that picks the final
model from it (`tuner.objectives`, `tuner.constraints`, `tuner.select`).

An objective is a validation metric the model logs (`val_accuracy`, `val_loss`, ...) or a measure extf takes of each
trial's model: `params` (its number of parameters) and `latency_ms` (milliseconds of prediction per sample). Pure
functions over plain dicts: the study, the report and the tests share them.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from extf.errors import ConfigError

MEASURES = {"params": "min", "latency_ms": "min"}  # taken by extf of each trial's model
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
SELECT_RULES = ("first",)  # the best value of the first objective among the trials that meet the constraints


@dataclass(frozen=True)
class Goal:
    name: str
    direction: str  # min | max

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b


@dataclass(frozen=True)
class Constraint:
    name: str
    op: str
    bound: float

    def holds(self, values: dict) -> bool:
        return self.name in values and OPS[self.op](float(values[self.name]), self.bound)

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


def parse_objectives(raw, key: str = "tuner.objectives") -> list[Goal]:
    """`[val_accuracy: max, params: min]`, `["val_accuracy:max", "params"]` or dicts with name and direction."""
    goals = []
    for item in raw or []:
        if isinstance(item, dict) and set(item) == {"name", "direction"}:
            name, direction = item["name"], item["direction"]
        elif isinstance(item, dict) and len(item) == 1:
            (name, direction), = item.items()
        elif isinstance(item, str):
            name, _, direction = item.partition(":")
            direction = direction or MEASURES.get(name) or ("min" if "loss" in name or "error" in name else "max")
        else:
            name, direction = None, None
        if not isinstance(name, str) or direction not in ("min", "max"):
            raise ConfigError(f"{key} lists objectives as name: direction (min or max), e.g. "
                              f"[val_accuracy: max, params: min]. Received: {item!r}")
        if name not in MEASURES and not name.startswith("val_"):
            raise ConfigError(f"{key}: {name!r} is neither a validation metric (val_*) nor a measure extf takes "
                              f"({', '.join(MEASURES)}). Received: {key}={raw!r}")
        goals.append(Goal(name, direction))
    if len({g.name for g in goals}) != len(goals):
        raise ConfigError(f"{key} names an objective twice. Received: {key}={raw!r}")
    return goals


def parse_constraints(raw, goals: list[Goal], key: str = "tuner.constraints") -> list[Constraint]:
    """`["params <= 50000", "latency_ms < 2"]`: each on a measure or an objective."""
    known = {*MEASURES, *(g.name for g in goals)}
    out = []
    for item in raw or []:
        match = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*",
                             str(item))
        if not match:
            raise ConfigError(f"{key}: each constraint is `name op number` with op one of <=, <, >=, >, e.g. "
                              f"'params <= 50000'. Received: {item!r}")
        name, op, bound = match.groups()
        if name not in known:
            raise ConfigError(f"{key}: {name!r} is not a measure extf takes ({', '.join(MEASURES)}) nor one of the "
                              f"objectives ({', '.join(g.name for g in goals) or 'none'}). Received: {item!r}")
        out.append(Constraint(name, op, float(bound)))
    return out


def dominates(a: dict, b: dict, goals: list[Goal]) -> bool:
    """a is at least as good as b in every objective and better in one."""
    at_least = all(not g.better(b[g.name], a[g.name]) for g in goals)
    return at_least and any(g.better(a[g.name], b[g.name]) for g in goals)


def pareto_front(trials: list[dict], goals: list[Goal]) -> list[dict]:
    """The trials no other trial dominates (each trial: a dict with every objective's value), in input order."""
    scored = [t for t in trials if all(t.get(g.name) is not None for g in goals)]
    return [t for t in scored if not any(dominates(o, t, goals) for o in scored if o is not t)]


def select(trials: list[dict], goals: list[Goal], constraints: list[Constraint], rule: str = "first") -> dict | None:
    """The final model's trial. Rule `first`: among the trials that meet every constraint, the best value of the
    first objective; ties go to the one no other such trial dominates. None if no trial meets the constraints."""
    if rule not in SELECT_RULES:
        raise ConfigError(f"tuner.select must be one of: {', '.join(SELECT_RULES)}. Received: tuner.select={rule!r}")
    feasible = pareto_front([t for t in trials if all(c.holds(t) for c in constraints)], goals)
    if not feasible:
        return None
    first = goals[0]
    best = feasible[0]
    for t in feasible[1:]:
        if first.better(t[first.name], best[first.name]):
            best = t
    return best
