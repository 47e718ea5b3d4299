"""Several objectives: the study's goals and constraints, the Pareto front and the rule that picks the tested model
from it (`tuner.objectives`, `tuner.constraints`, `tuner.select`; read and checked in extf.config.objectives).

An objective is a validation metric the model logs (`val_accuracy`, `val_loss`, ...) or a measure extf takes of each
trial's model (extf.tuning.trial.take_measures): `params` (its number of parameters) and `latency_ms` (milliseconds
of prediction per sample). Functions over plain dicts (trials.jsonl rows): the study, the report and the tests share
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from extf.config.objectives import (
    MEASURES,
    SELECT_RULES,
    Constraint,
    Goal,
    parse_constraints,
    parse_objectives,
)
from extf.errors import ConfigError
from extf.objective import Objective, ranked_trials, resolve_objective

__all__ = ["MEASURES", "Constraint", "Goal", "Objectives", "dominates", "pareto_front", "parse_constraints",
           "parse_objectives", "select", "study_objectives"]


def dominates(a: dict, b: dict, goals: list[Goal]) -> bool:
    """a is at least as good as b in every objective and better in one."""
    at_least = all(not g.better(b[g.name], a[g.name]) for g in goals)
    return at_least and any(g.better(a[g.name], b[g.name]) for g in goals)


def pareto_front(trials: list[dict], goals: list[Goal]) -> list[dict]:
    """The trials no other trial dominates (each trial: a dict with every objective's value), in input order."""
    scored = [t for t in trials if all(t.get(g.name) is not None for g in goals)]
    return [t for t in scored if not any(dominates(o, t, goals) for o in scored if o is not t)]


def select(trials: list[dict], goals: list[Goal], constraints: list[Constraint], rule: str = "first") -> dict | None:
    """The tested trial. Rule `first`: among the trials that meet every constraint, the best value of the first
    objective; among trials tied there, one no other tied trial dominates on the other objectives (so the choice is
    on the Pareto front), then the lower val_loss_min (the leaderboard's order, extf.objective), then the earlier.
    None if no trial meets the constraints. Each process of a study applies the same rule as its trials end
    (`leads`); the distributed chief picks among the workers' best trials with this (extf.tuning.state.collect_best)."""
    if rule not in SELECT_RULES:
        raise ConfigError(f"tuner.select must be one of: {', '.join(SELECT_RULES)}. Received: tuner.select={rule!r}")
    first = goals[0]
    feasible = [t for t in trials if t.get(first.name) is not None and all(c.holds(t) for c in constraints)]
    if not feasible:
        return None
    top = ranked_trials(feasible, Objective(first.name, first.direction))[0][first.name]
    tied = [t for t in feasible if t[first.name] == top]
    return ranked_trials(pareto_front(tied, goals), Objective(first.name, first.direction))[0]


def leads(row: dict, best: dict | None, goals: list[Goal], objective: Objective) -> bool:
    """Whether a trial that meets the constraints takes the lead from `best` (None: no best yet) under rule
    `first`: a better first objective; tied there, dominating it on the other objectives (not being dominated),
    else the lower val_loss_min."""
    if best is None:
        return True
    value, held = row[objective.name], best[objective.name]
    if value == held and len(goals) > 1 and all(row.get(g.name) is not None and best.get(g.name) is not None
                                                for g in goals):
        if dominates(row, best, goals):
            return True
        if dominates(best, row, goals):
            return False
    return objective.rank(value, row.get("val_loss_min")) < objective.rank(held, best.get("val_loss_min"))


@dataclass(frozen=True)
class Objectives:
    """A study's objectives beyond the one it ranks by: every goal (the first is the study's objective), the
    constraints a tested trial must meet and the rule that picks it. Empty: one objective, no constraints."""

    goals: tuple[Goal, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    rule: str = "first"

    @property
    def several(self) -> bool:
        """Several objectives: the study has a Pareto front."""
        return len(self.goals) > 1

    def measures(self) -> set[str]:
        """The measures extf takes of each trial's model for these goals and constraints (params is always taken)."""
        return {"params"} | {n for n in self.names() if n in MEASURES}

    def metrics(self, objective: str) -> list[str]:
        """The validation metrics besides the objective they need, each read at the trial's best epoch."""
        return [n for n in self.names() if n not in MEASURES and n != objective]

    def names(self) -> list[str]:
        names = [g.name for g in self.goals]
        return names + [c.name for c in self.constraints if c.name not in names]

    def feasible(self, row: dict) -> bool:
        return all(c.holds(row) for c in self.constraints)

    def not_produced(self, name: str, objective: str, available) -> ConfigError:
        """The one message for a validation metric the study needs that the model does not log, naming the setting
        that asks for it: the objective (tuner.objective.name, or tuner.objectives when listed), another of
        tuner.objectives, or tuner.constraints."""
        constrained = [str(c) for c in self.constraints if c.name == name]
        if constrained and name != objective and all(g.name != name for g in self.goals):
            what, key, value = f"metric {name!r} of tuner.constraints", "tuner.constraints", constrained
        else:
            key = "tuner.objectives" if self.goals else "tuner.objective.name"
            what, value = f"objective metric {name!r}", name
        return ConfigError(f"The {what} is not produced by this model. Expected one of its validation metrics: "
                           f"{', '.join(sorted(available))}. Set {key} (or add the metric with model.metrics). "
                           f"Received: {key}={value!r}")


def study_objectives(tuner_cfg, task: str) -> tuple[Objective, Objectives]:
    """The study's objective (the first of tuner.objectives, else tuner.objective; `auto` resolved for the task)
    and its Objectives (the config check, extf.config.objectives.objectives_fit, has passed)."""
    from omegaconf import OmegaConf

    raw = tuner_cfg.get("objectives")
    raw = OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw
    goals = parse_objectives(raw)
    if goals:
        first = goals[0]
        objective = resolve_objective(first.name, first.direction, task)
        goals[0] = Goal(objective.name, objective.direction)
        if any(g.name == objective.name for g in goals[1:]):
            raise ConfigError(f"tuner.objectives names {objective.name} twice (auto is {objective.name} for a "
                              f"{task} dataset). Received: tuner.objectives={raw!r}")
    else:
        objective = resolve_objective(tuner_cfg.objective.name, tuner_cfg.objective.direction, task)
    constraints = tuner_cfg.get("constraints")
    constraints = OmegaConf.to_container(constraints, resolve=True) if OmegaConf.is_config(constraints) else constraints
    return objective, Objectives(tuple(goals), tuple(parse_constraints(constraints, goals)),
                                 str(tuner_cfg.get("select") or "first"))


def front_record(trials: list[dict], objectives: Objectives, chosen: dict | None) -> dict:
    """pareto_front.json: the goals, constraints and rule, every finished trial's values, which trials are on the
    front (among those that meet the constraints) and which one was tested."""
    goals = list(objectives.goals)
    done = [t for t in trials if t.get("status", "FINISHED") == "FINISHED" and
            all(t.get(g.name) is not None for g in goals)]
    feasible = [t for t in done if objectives.feasible(t)]
    front = {t["trial_id"] for t in pareto_front(feasible, goals)}
    keep = [g.name for g in goals] + [c.name for c in objectives.constraints]
    points = [{"trial_id": t["trial_id"], **{k: t.get(k) for k in dict.fromkeys(keep)},
               "feasible": objectives.feasible(t), "on_front": t["trial_id"] in front} for t in done]
    return {"objectives": [{"name": g.name, "direction": g.direction} for g in goals],
            "constraints": [str(c) for c in objectives.constraints], "select": objectives.rule,
            "selected_trial": chosen.get("trial_id") if chosen else None, "trials": points}


def front_chart(record: dict, path) -> None:
    """plots/pareto_front.png: each finished trial by the second objective (x) and the first (y); the front joined
    by a line, trials that miss a constraint hollow, the tested one starred (the report shows it with the study's
    other plots)."""
    from extf.evaluation.plots import pareto_plot

    y, x = (g["name"] for g in record["objectives"][:2])
    points = [(p[x], p[y], p["feasible"], p["on_front"], p["trial_id"] == record["selected_trial"])
              for p in record["trials"]]
    title = f"Pareto front ({sum(p[3] for p in points)} of {len(points)} trials)"
    if record["constraints"]:
        title += "; " + ", ".join(record["constraints"])
    pareto_plot(points, x, y, path, title=title)
