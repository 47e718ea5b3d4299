"""The study time budget: parsing `tuner.time_budget`, and the oracle that stops on time (a fake clock).

keras-tuner (and so TensorFlow) is imported by the tests of the oracle, not when the file is collected: every xdist
worker collects every test file."""

from __future__ import annotations

import pytest

from extf.config.duration import parse_duration
from extf.errors import ConfigError


@pytest.mark.parametrize("value, seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("30m", 1800.0),
                                            ("2h", 7200.0), ("1.5h", 5400.0), ("1d", 86400.0), (None, None),
                                            ("none", None), (0.5, 0.5)])
def test_durations_read_as_seconds(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "0m", "-1h", "2 hours", "h", True, "1y"])
def test_a_bad_budget_is_one_message_naming_the_key_and_the_value(value):
    with pytest.raises(ConfigError, match=r"tuner\.time_budget must be a positive duration.*Received: "
                                          r"tuner\.time_budget="):
        parse_duration(value)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_oracle(tmp_path, clock, budget=60.0, cls=None, **kwargs):
    import keras_tuner as kt

    from extf.tuning.budget import with_budget

    cls = cls or kt.oracles.RandomSearchOracle
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = with_budget(cls)(objective=kt.Objective("val_accuracy", "max"), max_trials=100, hyperparameters=hp,
                              tune_new_entries=False, seed=1, time_budget=budget, clock=clock, **kwargs)
    oracle._set_project_dir(str(tmp_path), "search")
    return oracle


def test_no_trial_starts_after_the_budget_and_a_running_one_stops_at_its_next_epoch(tmp_path):
    from keras_tuner.engine import trial as kt_trial

    clock = Clock()
    oracle = make_oracle(tmp_path, clock)
    trial = oracle.create_trial("tuner0")
    assert trial.status == kt_trial.TrialStatus.RUNNING
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0).status != "STOPPED"
    clock.now += 61
    assert oracle.time_left() == 0.0 and oracle.budget_spent()
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.6}, step=1).status == "STOPPED"
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert oracle.trials[trial.trial_id].score == pytest.approx(0.6)  # the epochs it had count
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert len(oracle.trials) == 1


def test_a_resumed_study_goes_on_with_what_is_left_of_its_budget(tmp_path):
    from keras_tuner.engine import trial as kt_trial

    clock = Clock()
    oracle = make_oracle(tmp_path, clock)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0)
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    clock.now += 40
    oracle.save()

    clock.now += 3600  # the study was not running meanwhile
    resumed = make_oracle(tmp_path, clock)
    resumed.reload()
    assert resumed.time_left() == pytest.approx(20.0)
    assert resumed.create_trial("tuner0").status == "RUNNING"
    clock.now += 25
    assert resumed.create_trial("tuner1").status == "STOPPED"


def test_budget_and_pruning_compose_on_one_oracle(tmp_path):
    import keras_tuner as kt

    from extf.tuning.pruning import PruningRule, pruned_epoch, with_pruning

    clock = Clock()
    cls = with_pruning(kt.oracles.RandomSearchOracle)
    oracle = make_oracle(tmp_path, clock, cls=cls, pruning=PruningRule("median", "max", 0, 1))
    assert hasattr(oracle, "pruned") and oracle.time_budget == 60.0
    trial = oracle.create_trial("tuner0")
    clock.now += 100
    answer = oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0)
    assert answer.status == "STOPPED" and pruned_epoch(answer) is None
    assert trial.trial_id not in oracle.pruned  # stopped by the budget, not pruned


def test_the_budget_counts_from_the_studys_start_not_the_oracles(tmp_path):
    """The study's start-up (data loading, TensorFlow's import) is part of the budget."""
    from keras_tuner.engine import trial as kt_trial

    clock = Clock()
    oracle = make_oracle(tmp_path, clock, elapsed=15.0)
    assert oracle.time_left() == pytest.approx(45.0)
    trial = oracle.create_trial("tuner0")
    clock.now += 44
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0).status != "STOPPED"
    clock.now += 2
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.6}, step=1).status == "STOPPED"
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert oracle.create_trial("tuner0").status == "STOPPED"


def test_a_resumed_study_counts_its_own_start_up_too(tmp_path):
    from keras_tuner.engine import trial as kt_trial

    clock = Clock()
    oracle = make_oracle(tmp_path, clock, elapsed=10.0)
    trial = oracle.create_trial("tuner0")
    clock.now += 30
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0)
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)  # saved: 40 s spent

    clock.now += 3600
    resumed = make_oracle(tmp_path, clock, elapsed=5.0)  # this run started 5 s before its oracle was made
    resumed.reload()
    assert resumed.time_left() == pytest.approx(15.0)


def test_make_oracle_starts_the_budget_at_the_studys_start(make_cfg):
    import time

    from extf.tuning.oracle import make_oracle as make_study_oracle
    from extf.tuning.space import parse_space

    cfg = make_cfg(["dataset=iris", "model=mlp", "tuner.time_budget=60"], command="tune")
    objective = type("O", (), {"name": "val_accuracy", "direction": "max"})()
    oracle = make_study_oracle(cfg, parse_space(cfg.search_space, cfg), objective, started=time.time() - 25)
    assert 30.0 < oracle.time_left() <= 35.0
    assert make_study_oracle(cfg, parse_space(cfg.search_space, cfg), objective).time_left() > 55.0


def test_each_trials_progress_line_shows_the_time_left(make_cfg, tmp_path):
    import io

    from extf.objective import Objective
    from extf.tuning.context import TrialResult
    from extf.tuning.recorder import TrialRecorder
    from extf.tuning.state import StudyState

    cfg = make_cfg(["dataset=iris", "model=mlp", "tuner.time_budget=60"], command="tune")
    state = StudyState(tmp_path / "study")
    state.prepare(overwrite=False)
    out = io.StringIO()
    recorder = TrialRecorder(cfg, state, Objective("val_accuracy", "max"), out)
    recorder.record(TrialResult("00", {"model.units": 8}, "FAILED", None, 3, 1.5, reason="diverged",
                                budget_left=18.4))
    recorder.record(TrialResult("01", {"model.units": 16}, "FAILED", None, 3, 1.5, reason="diverged"))
    first, second = out.getvalue().splitlines()
    assert first.endswith("s  budget left 18s") and "budget left" not in second


def test_a_budget_spent_by_the_start_up_alone_still_runs_one_trial_of_one_epoch(tmp_path):
    clock = Clock()
    oracle = make_oracle(tmp_path, clock, budget=5.0, elapsed=9.0)
    assert oracle.budget_spent()
    trial = oracle.create_trial("tuner0")
    assert trial.status == "RUNNING"  # the study gets a model to test
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0).status == "STOPPED"
    assert oracle.create_trial("tuner1").status == "STOPPED"


def test_a_worker_counts_down_to_the_deadline_the_chief_wrote_into_worker_json(tmp_path):
    import time
    from types import SimpleNamespace

    from extf.tuning.distributed import budget_deadline, read_worker_file, write_worker_file
    from extf.tuning.tuner import StudyTuner

    clock = Clock()
    oracle = make_oracle(tmp_path, clock, budget=60.0)
    clock.now += 20.0
    write_worker_file(tmp_path, {}, "t", None, None, 1234, budget_deadline(oracle))
    info = read_worker_file(tmp_path, "t", ready=True)
    assert 39.0 < info["budget_deadline"] - time.time() <= 40.0
    # a worker's oracle is the chief's gRPC client: no time_left; its progress lines count down to the deadline
    worker = SimpleNamespace(oracle=object(), ctx=SimpleNamespace(budget_deadline=info["budget_deadline"]))
    assert 39.0 < StudyTuner._budget_left(worker) <= 40.0
    assert StudyTuner._budget_left(SimpleNamespace(oracle=object(), ctx=SimpleNamespace(budget_deadline=None))) is None
    assert StudyTuner._budget_left(SimpleNamespace(oracle=oracle, ctx=None)) == 40.0
    no_budget = make_oracle(tmp_path / "none", clock, budget=None)
    assert budget_deadline(no_budget) is None
