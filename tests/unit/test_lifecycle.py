"""The trial lifecycle on keras-tuner's hooks, driven by keras-tuner's own code for one trial (no training): the
trial run opens in on_trial_begin and ends from keras-tuner's verdict in on_trial_end; a trial that stops the search
ends its run KILLED / FAILED and is not recorded."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class FakeTracker:
    """The tracker calls of a trial, with the ids each call carries."""

    def __init__(self):
        self.calls = []

    def start_trial(self, parent_id, trial_id, params, worker_id=None):
        self.calls.append(("start_trial", trial_id, params, parent_id, worker_id))
        return f"run-{trial_id}"

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, *args, kwargs))


class FakeTrial:
    def __init__(self, trial_id: str, values: dict):
        import keras_tuner as kt

        self.trial_id = trial_id
        self.hyperparameters = kt.HyperParameters()
        for name, value in values.items():
            self.hyperparameters.Fixed(name, value)
        self.status = kt.engine.trial.TrialStatus.RUNNING
        self.message = None


@pytest.fixture
def lifecycle(make_cfg, tmp_path, monkeypatch):
    from extf.objective import Objective
    from extf.tuning.context import TrialContext
    from extf.tuning.space import parse_space
    from extf.tuning.tuner import make_tuner

    cfg = make_cfg(["dataset=iris", "model=mlp", "search_space=none", "tracking=none"], command="tune")
    tracker, records = FakeTracker(), []
    ctx = TrialContext(cfg, None, Objective("val_accuracy", "max"), tracker, records.append, print,
                       parent_run_id="parent", worker_id="worker1")
    tuner = make_tuner(ctx, parse_space(cfg.search_space, cfg), tmp_path / "tuner", overwrite=True)
    monkeypatch.setattr(tuner.oracle, "end_trial", lambda trial: None)  # these trials are not the oracle's
    monkeypatch.setattr(tuner, "save", lambda: None)
    return tuner, tracker, records, monkeypatch


def fails_with(monkeypatch, tuner, error: BaseException):
    def fit_trial(trial):
        raise error

    monkeypatch.setattr(tuner, "_fit_trial", fit_trial)


def test_a_failed_trial_is_recorded_and_its_run_ends_failed_with_keras_tuners_reason(lifecycle):
    import keras_tuner as kt

    tuner, tracker, records, monkeypatch = lifecycle
    trial = FakeTrial("03", {"model.units": 8})
    tuner.on_trial_begin(trial)
    assert tracker.calls == [("start_trial", "03", {"model.units": 8}, "parent", "worker1")]
    assert tuner.tuner_id == "worker1"
    error = ValueError("shapes do not match\nsecond line")
    fails_with(monkeypatch, tuner, error)
    tuner._try_run_and_update_trial(trial)  # keras-tuner's own code sets the status and the message
    assert trial.status == kt.engine.trial.TrialStatus.FAILED
    tuner.on_trial_end(trial)
    reason = "ValueError: shapes do not match\nsecond line"
    # the run's end, then a flush: the end is in the store before the oracle counts the trial as done
    assert tracker.calls[-2:] == [("end_trial", "run-03", "FAILED", {"history": [], "reason": reason}), ("flush", {})]
    (result,) = records
    assert (result.trial_id, result.status, result.value, result.reason) == ("03", "FAILED", None,
                                                                             "ValueError: shapes do not match")
    assert result.error is error and result.hp_values == {"model.units": 8}
    assert tuner.running is None


@pytest.mark.parametrize("error, status, reason", [
    (KeyboardInterrupt(), "KILLED", "interrupted (KeyboardInterrupt)"),
    ("fatal", "FAILED", "the project's model function is broken"),
])
def test_a_trial_that_stops_the_search_ends_its_run_and_is_not_recorded(lifecycle, error, status, reason):
    import keras_tuner as kt

    from extf.errors import UserCodeError

    tuner, tracker, records, monkeypatch = lifecycle
    if error == "fatal":
        error = kt.errors.FatalError(UserCodeError(reason))
    trial = FakeTrial("04", {})
    tuner.on_trial_begin(trial)
    fails_with(monkeypatch, tuner, error)
    with pytest.raises(type(error)):
        tuner._try_run_and_update_trial(trial)
    assert tracker.calls[-1] == ("end_trial", "run-04", status, {"history": [], "reason": reason})
    assert records == [] and tuner.running is None


def test_a_trial_that_fails_after_a_dropped_ctrl_c_stops_the_search_as_interrupted(lifecycle):
    """A Ctrl-C that Python dropped inside TensorFlow's C++ (it interrupted an import there) made the fit fail with
    an unrelated error ("'list' object has no attribute '_type_spec'"), and every later trial too: the study must
    stop as interrupted, its run KILLED, not go on and end with "Training failed"."""
    from extf import errors

    tuner, tracker, records, monkeypatch = lifecycle
    monkeypatch.setattr(errors, "_interrupt", ["signal 2"])
    trial = FakeTrial("06", {})
    tuner.on_trial_begin(trial)
    fails_with(monkeypatch, tuner, AttributeError("'list' object has no attribute '_type_spec'"))
    with pytest.raises(KeyboardInterrupt):
        tuner._try_run_and_update_trial(trial)
    assert tracker.calls[-1] == ("end_trial", "run-06", "KILLED",
                                 {"history": [], "reason": "interrupted (KeyboardInterrupt)"})
    assert records == [] and tuner.running is None


def test_a_lost_tracking_server_stops_the_search():
    import keras_tuner as kt

    from extf.errors import TrackingUnavailable
    from extf.tuning.tuner import StudyTuner

    class Lost(FakeTracker):
        def start_trial(self, parent_id, trial_id, params, worker_id=None):
            raise TrackingUnavailable("the tracking server is gone")

    tuner = StudyTuner.__new__(StudyTuner)  # only the hook: no oracle needed
    tuner.ctx = type("Ctx", (), {"tracker": Lost(), "parent_run_id": None, "worker_id": None})()
    tuner.get_trial_dir = lambda trial_id: "unused"
    with pytest.raises(kt.errors.FatalError):
        tuner.on_trial_begin(FakeTrial("05", {}))


def test_failure_reason_of_a_message_without_a_traceback():
    from extf.tuning.tuner import failure_reason

    assert failure_reason(None) == "the trial failed"
    assert failure_reason("something odd") == "something odd"


def test_a_pruning_verdict_at_the_trials_last_epoch_stops_nothing_and_is_not_recorded():
    """The oracle may answer STOPPED to the last epoch's value (the others' medians moved meanwhile): the trial
    trained in full, so it is not pruned (a CI run recorded a trial of 6 epochs as pruned at epoch 6)."""
    from pathlib import Path

    import keras_tuner as kt
    from omegaconf import OmegaConf

    from extf.objective import Objective
    from extf.tuning.pruning import FINAL_EPOCH, PRUNED_AT
    from extf.tuning.tuner import RunningTrial, StudyTuner

    answer = kt.engine.trial.Trial(kt.HyperParameters(), trial_id="02", status=kt.engine.trial.TrialStatus.STOPPED)
    answer.metrics.register(PRUNED_AT, direction="min")
    answer.metrics.update(PRUNED_AT, 5)
    tuner = StudyTuner.__new__(StudyTuner)  # only the hook: the oracle answers every epoch with that verdict
    reports = []
    tuner.oracle = type("Oracle", (), {"update_trial": lambda self, trial_id, metrics, step=0:
                                       reports.append(metrics) or answer})()
    cfg = OmegaConf.create({"tuner": {"pruning": "median", "time_budget": None, "cv_folds": 0}})
    tuner.ctx = type("Ctx", (), {"cfg": cfg, "objective": Objective("val_loss", "min")})()
    trial = FakeTrial("02", {})
    for final, stops, pruned_at in ((True, False, None), (False, True, 6)):
        tuner.running = RunningTrial("run", {}, Path("unused"), None, 0.0)
        assert tuner._oracle_stops(trial, 5, {"val_loss": 0.3}, final=final) is stops
        assert (tuner.running.stopped, tuner.running.pruned_at) == (stops, pruned_at)
        assert (FINAL_EPOCH in reports[-1]) is final  # the pruning oracle is told, too
