"""Several objectives: parsing, the Pareto front and the rule that picks the final model."""

from __future__ import annotations

import pytest

from extf.errors import ConfigError
from extf.tuning.pareto import Goal, pareto_front, parse_constraints, parse_objectives, select

GOALS = [Goal("val_accuracy", "max"), Goal("params", "min")]
TRIALS = [
    {"id": "a", "val_accuracy": 0.95, "params": 90_000},
    {"id": "b", "val_accuracy": 0.93, "params": 20_000},
    {"id": "c", "val_accuracy": 0.90, "params": 30_000},  # dominated by b
    {"id": "d", "val_accuracy": 0.80, "params": 5_000},
    {"id": "e", "val_accuracy": 0.95, "params": 95_000},  # dominated by a (same accuracy, more params)
]


def ids(trials):
    return [t["id"] for t in trials]


def test_the_front_holds_exactly_the_trials_no_other_dominates():
    assert ids(pareto_front(TRIALS, GOALS)) == ["a", "b", "d"]
    assert ids(pareto_front(TRIALS, GOALS[:1])) == ["a", "e"]  # one objective: the ties at the top


def test_select_takes_the_best_first_objective_under_the_constraints():
    constraints = parse_constraints(["params <= 50000"], GOALS)
    assert select(TRIALS, GOALS, [])["id"] == "a"
    assert select(TRIALS, GOALS, constraints)["id"] == "b"
    assert select(TRIALS, GOALS, parse_constraints(["params < 1000"], GOALS)) is None


def test_a_feasible_trial_dominated_only_by_an_infeasible_one_can_still_win():
    trials = [{"id": "fast", "val_accuracy": 0.99, "params": 10, "latency_ms": 9.0},
              {"id": "ok", "val_accuracy": 0.97, "params": 20, "latency_ms": 1.0}]
    goals = [Goal("val_accuracy", "max"), Goal("params", "min")]
    assert select(trials, goals, parse_constraints(["latency_ms <= 2"], goals))["id"] == "ok"


@pytest.mark.parametrize("raw, expected", [
    ([{"val_accuracy": "max"}, {"params": "min"}], GOALS),
    (["val_accuracy:max", "params"], GOALS),
    ([{"name": "val_loss", "direction": "min"}, "latency_ms"], [Goal("val_loss", "min"), Goal("latency_ms", "min")]),
])
def test_objectives_read_from_the_forms_users_write(raw, expected):
    assert parse_objectives(raw) == expected


@pytest.mark.parametrize("raw, needle", [
    (["accuracy:max"], "neither a validation metric"),
    (["val_accuracy:up"], "name: direction"),
    (["val_accuracy", "val_accuracy:max"], "twice"),
])
def test_bad_objectives_are_one_message(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_objectives(raw)


@pytest.mark.parametrize("raw, needle", [(["flops <= 5"], "not a measure"), (["params = 5"], "name op number")])
def test_bad_constraints_are_one_message(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_constraints(raw, GOALS)
