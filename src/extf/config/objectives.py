"""`tuner.objectives`, `tuner.constraints` and `tuner.select` read and checked from the config, before any trial.

An objective is a validation metric the model logs (`val_accuracy`, `val_loss`, ...), `auto` (the task's own, as
`tuner.objective.name=auto`), or a measure extf takes of each trial's model: `params` (its number of parameters) and
`latency_ms` (milliseconds of prediction per sample). The first objective is the one the search ranks trials by (a
validation metric); the others, with the constraints, decide the Pareto front and which trial is tested
(extf.tuning.pareto).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from extf.errors import ConfigError

MEASURES = {"params": "min", "latency_ms": "min"}  # taken by extf of each trial's model
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
SELECT_RULES = ("first",)  # the best value of the first objective among the trials that meet the constraints
MULTI_OBJECTIVE_TUNERS = ("nsga2",)  # the tuners that search several objectives at once


@dataclass(frozen=True)
class Goal:
    name: str
    direction: str  # min | max (auto: the task's objective, resolved with the dataset)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b


@dataclass(frozen=True)
class Constraint:
    name: str
    op: str
    bound: float

    def holds(self, values: dict) -> bool:
        return values.get(self.name) is not None and OPS[self.op](float(values[self.name]), self.bound)

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


def parse_objectives(raw, key: str = "tuner.objectives") -> list[Goal]:
    """`[val_accuracy: max, params: min]`, `["val_accuracy:max", "params"]`, `[auto, params]` or dicts with name and
    direction."""
    goals = []
    for item in raw or []:
        if isinstance(item, dict) and set(item) == {"name", "direction"}:
            name, direction = item["name"], item["direction"]
        elif isinstance(item, dict) and len(item) == 1:
            (name, direction), = item.items()
        elif isinstance(item, str):
            name, _, direction = item.partition(":")
            direction = direction or ("auto" if name == "auto" else MEASURES.get(name)
                                      or ("min" if "loss" in name or "error" in name else "max"))
        else:
            name, direction = None, None
        if not isinstance(name, str) or direction not in ("min", "max", *(("auto",) if name == "auto" else ())):
            raise ConfigError(f"{key} lists objectives as name: direction (min or max), e.g. "
                              f"[val_accuracy: max, params: min]. Received: {item!r}")
        if name not in MEASURES and name != "auto" and not name.startswith("val_"):
            raise ConfigError(f"{key}: {name!r} is neither a validation metric (val_*) nor a measure extf takes "
                              f"({', '.join(MEASURES)}). Received: {key}={raw!r}")
        goals.append(Goal(name, direction))
    if len({g.name for g in goals}) != len(goals):
        raise ConfigError(f"{key} names an objective twice. Received: {key}={raw!r}")
    return goals


def parse_constraints(raw, goals: list[Goal], key: str = "tuner.constraints") -> list[Constraint]:
    """`["params <= 50000", "val_loss < 0.3"]`: each on a measure or a validation metric (at the trial's best
    epoch)."""
    known = {*MEASURES, *(g.name for g in goals)}
    out = []
    for item in raw or []:
        match = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*",
                             str(item))
        if not match:
            raise ConfigError(f"{key}: each constraint is `name op number` with op one of <=, <, >=, >, e.g. "
                              f"'params <= 50000'. Received: {item!r}")
        name, op, bound = match.groups()
        if name not in known and not name.startswith("val_"):
            raise ConfigError(f"{key}: {name!r} is not a measure extf takes ({', '.join(MEASURES)}), a validation "
                              f"metric (val_*) nor one of the objectives ({', '.join(g.name for g in goals) or 'none'})"
                              f". Received: {item!r}")
        out.append(Constraint(name, op, float(bound)))
    return out


def objectives_fit(section: dict, prefix: str = "tuner") -> None:
    """The config check of a tuner section (extf.config.schema): the objectives and constraints parse, the first
    objective is a validation metric, nsga2 has several, tuner.objective does not say otherwise, a known rule."""
    goals = parse_objectives(section.get("objectives"))
    objective = section.get("objective") or {}
    if goals:
        first = goals[0]
        if first.name in MEASURES:
            raise ConfigError(f"The first of tuner.objectives is what the search ranks trials by and what "
                              f"tuner.select=first picks the tested model by: a validation metric (val_*) or auto. "
                              f"Put {first.name} after it. Received: tuner.objectives={section.get('objectives')!r}")
        named = objective.get("name", "auto")
        if named not in ("auto", first.name):
            raise ConfigError(f"tuner.objective.name and the first of tuner.objectives disagree: with "
                              f"tuner.objectives the first one is the objective. Leave tuner.objective.name=auto or "
                              f"make them equal. Received: tuner.objective.name={named!r}, "
                              f"tuner.objectives={section.get('objectives')!r}")
    name = section.get("name")
    if name in MULTI_OBJECTIVE_TUNERS and len(goals) < 2:
        raise ConfigError(f"tuner={name} searches several objectives at once: list at least two in tuner.objectives, "
                          f"e.g. tuner.objectives='[auto, params]'. Use tuner=tpe for one objective. Received: "
                          f"tuner.objectives={section.get('objectives')!r}")
    parse_constraints(section.get("constraints"), goals)
    if section.get("select", "first") not in SELECT_RULES:
        raise ConfigError(f"tuner.select must be one of: {', '.join(SELECT_RULES)} (the best first objective among "
                          f"the trials that meet tuner.constraints). Received: tuner.select={section.get('select')!r}")
