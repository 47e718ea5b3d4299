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


# --------------------------------------------------------------------------- the config check, before any data
@pytest.mark.parametrize("section, needle", [
    ({"name": "nsga2", "objectives": ["auto"]}, "tuner=nsga2 searches several objectives"),
    ({"name": "nsga2", "objectives": []}, "list at least two in tuner.objectives"),
    ({"name": "random", "objectives": ["params", "val_accuracy"]}, "Put params after it"),
    ({"name": "random", "objectives": ["val_loss", "params"], "objective": {"name": "val_accuracy"}},
     "tuner.objective.name and the first of tuner.objectives disagree"),
    ({"name": "random", "objectives": ["auto", "params"], "constraints": ["flops <= 5"]}, "'flops' is not a measure"),
    ({"name": "random", "constraints": ["params = 5"]}, "name op number"),
    ({"name": "random", "select": "pareto"}, "tuner.select must be one of: first"),
])
def test_objectives_that_cannot_work_are_refused_with_the_config(section, needle):
    from extf.config.objectives import objectives_fit

    with pytest.raises(ConfigError, match=needle) as info:
        objectives_fit(section)
    assert "Received:" in str(info.value)


def test_objectives_that_work_pass_the_config_check():
    from extf.config.objectives import objectives_fit

    objectives_fit({"name": "nsga2", "objectives": ["auto", "params"], "constraints": ["params <= 5e4"],
                    "select": "first", "objective": {"name": "auto"}})
    objectives_fit({"name": "random", "objectives": [], "constraints": ["latency_ms < 2", "val_loss < 0.5"]})


# --------------------------------------------------------------------------- the study's objectives
def tuner_cfg(**keys):
    from omegaconf import OmegaConf

    base = {"objective": {"name": "auto", "direction": "auto"}, "objectives": [], "constraints": [],
            "select": "first"}
    return OmegaConf.create({**base, **keys})


def test_the_first_objective_is_the_studys_and_auto_follows_the_task():
    from extf.tuning.pareto import study_objectives

    objective, objectives = study_objectives(tuner_cfg(objectives=["auto", "latency_ms"]), "regression")
    assert (objective.name, objective.direction) == ("val_loss", "min")
    assert objectives.goals == (Goal("val_loss", "min"), Goal("latency_ms", "min"))
    assert objectives.several and objectives.measures() == {"params", "latency_ms"}

    objective, objectives = study_objectives(tuner_cfg(constraints=["params <= 1000", "val_loss < 0.4"]), "multiclass")
    assert objective.name == "val_accuracy" and not objectives.several
    assert objectives.metrics(objective.name) == ["val_loss"]  # read at the best epoch for the constraint
    assert objectives.feasible({"params": 900, "val_loss": 0.3})
    assert not objectives.feasible({"params": 900, "val_loss": 0.5})
    assert not objectives.feasible({"val_loss": 0.3})  # a value missing does not meet its constraint


def test_auto_naming_an_objective_listed_again_is_refused():
    from extf.tuning.pareto import study_objectives

    with pytest.raises(ConfigError, match="names val_accuracy twice"):
        study_objectives(tuner_cfg(objectives=["auto", "val_accuracy:max"]), "binary")


def test_the_front_record_marks_the_front_among_feasible_trials_and_the_tested_one(tmp_path):
    from extf.tuning.pareto import Objectives, front_chart, front_record

    rows = [{**t, "trial_id": t["id"], "status": "FINISHED"} for t in TRIALS]
    rows.append({"trial_id": "f", "status": "FAILED", "val_accuracy": None})
    objectives = Objectives(tuple(GOALS), tuple(parse_constraints(["params <= 50000"], GOALS)))
    chosen = select(rows, list(objectives.goals), list(objectives.constraints))
    record = front_record(rows, objectives, chosen)
    by_id = {p["trial_id"]: p for p in record["trials"]}
    assert set(by_id) == {"a", "b", "c", "d", "e"}  # finished trials only
    assert [i for i, p in by_id.items() if p["on_front"]] == ["b", "d"]  # a is better but misses the constraint
    assert not by_id["a"]["feasible"] and by_id["b"]["feasible"]
    assert record["selected_trial"] == "b" and record["constraints"] == ["params <= 50000"]
    front_chart(record, tmp_path / "front.png")
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_breaks_ties_on_the_front_first_then_like_the_leaderboard():
    rows = [{"id": "x", "val_accuracy": 0.9, "val_loss_min": 0.5, "params": 10},
            {"id": "y", "val_accuracy": 0.9, "val_loss_min": 0.2, "params": 99}]
    assert select(rows, GOALS, [])["id"] == "x"  # y is dominated (same accuracy, more parameters)
    assert select(rows, GOALS[:1], [])["id"] == "y"  # one objective: the lower val_loss_min, as the leaderboard


def test_a_tie_on_the_first_objective_goes_to_the_trial_on_the_front():
    from extf.objective import Objective
    from extf.tuning.pareto import leads

    goals = [Goal("val_accuracy", "max"), Goal("params", "min"), Goal("latency_ms", "min")]
    objective = Objective("val_accuracy", "max")
    held = {"id": "1", "val_accuracy": 0.79, "params": 1411, "latency_ms": 0.043, "val_loss_min": 0.40}
    faster = {"id": "4", "val_accuracy": 0.79, "params": 1411, "latency_ms": 0.029, "val_loss_min": 0.45}
    assert leads(faster, held, goals, objective)  # dominates it on latency, though its val_loss_min is higher
    assert not leads(held, faster, goals, objective)
    assert select([held, faster], goals, [])["id"] == "4"
    other = {"id": "5", "val_accuracy": 0.79, "params": 900, "latency_ms": 0.05, "val_loss_min": 0.30}
    assert leads(other, faster, goals, objective)  # neither dominates: the leaderboard's tie-break
    assert select([held, faster, other], goals, [])["id"] == "5"
    assert not leads({**held, "val_accuracy": 0.5}, held, goals, objective)


def test_a_metric_the_model_does_not_log_is_one_message_naming_the_setting_that_asks_for_it():
    from extf.tuning.pareto import Objectives

    logged = ["val_loss", "val_accuracy"]
    text = str(Objectives().not_produced("val_auc", "val_auc", logged))
    assert text.startswith("The objective metric 'val_auc' is not produced by this model")
    assert "val_accuracy, val_loss" in text and "Received: tuner.objective.name='val_auc'" in text
    listed = Objectives((Goal("val_accuracy", "max"), Goal("val_auc", "max")))
    assert "Received: tuner.objectives='val_auc'" in str(listed.not_produced("val_auc", "val_accuracy", logged))
    constrained = Objectives((), tuple(parse_constraints(["val_auc >= 0.9"], [])))
    text = str(constrained.not_produced("val_auc", "val_accuracy", logged))
    assert text.startswith("The metric 'val_auc' of tuner.constraints is not produced")
    assert "tuner.objectives" not in text and "Received: tuner.constraints=['val_auc >= 0.9']" in text


def test_a_trial_whose_model_does_not_log_a_constrained_metric_stops_the_search_naming_the_constraint():
    import keras_tuner as kt

    from extf.tuning.pareto import Objectives
    from extf.tuning.tuner import _check_history

    history = {"loss": [0.5], "val_loss": [0.4], "val_accuracy": [0.8]}
    constrained = Objectives((), tuple(parse_constraints(["val_auc >= 0.9"], [])))
    _check_history(history, "val_accuracy", Objectives())
    with pytest.raises(kt.errors.FatalError) as e:
        _check_history(history, "val_accuracy", constrained)
    assert isinstance(e.value.args[0], ConfigError) and "Set tuner.constraints" in str(e.value.args[0])
    with pytest.raises(kt.errors.FatalError, match="objective metric 'val_auc'"):
        _check_history(history, "val_auc", Objectives())
