"""Pruning rules (median, ASHA) and the oracle mixin that applies them to each epoch's report."""

from __future__ import annotations

import pytest


def curve(*values) -> dict[int, float]:
    return dict(enumerate(values))


def test_median_stops_a_trial_worse_than_the_median_of_finished_trials_after_the_warmup():
    from extf.tuning.pruning import PruningRule

    rule = PruningRule("median", "max", warmup_epochs=2, min_trials=3)
    finished = [curve(0.5, 0.7, 0.8, 0.85), curve(0.4, 0.6, 0.75, 0.8), curve(0.45, 0.65, 0.7, 0.82)]
    bad = curve(0.1, 0.2, 0.3)
    assert not rule.should_stop(1, bad, finished, finished)  # still warming up (epochs 0 and 1)
    assert rule.should_stop(2, bad, finished, finished)  # 0.3 < median(0.8, 0.75, 0.7)
    good = curve(0.5, 0.7, 0.76)
    assert not rule.should_stop(2, good, finished, finished)
    assert not rule.should_stop(2, bad, finished[:2], finished)  # fewer finished trials than min_trials


def test_median_compares_the_best_value_so_far_and_follows_the_direction():
    from extf.tuning.pruning import PruningRule

    rule = PruningRule("median", "min", warmup_epochs=0, min_trials=1)
    finished = [curve(1.0, 0.8, 0.6)]
    assert not rule.should_stop(2, curve(0.5, 0.9, 0.9), finished, finished)  # its best (0.5) beats 0.6
    assert rule.should_stop(2, curve(0.9, 0.9, 0.9), finished, finished)


def test_asha_compares_at_rungs_only_and_keeps_the_best_third():
    from extf.tuning.pruning import PruningRule

    rule = PruningRule("asha", "max", warmup_epochs=1, min_trials=3, factor=3)
    assert rule.rung_epochs(30) == [0, 2, 8, 26]
    others = [curve(0.9, 0.9, 0.9), curve(0.8, 0.8, 0.8), curve(0.7, 0.7, 0.7), curve(0.6, 0.6, 0.6),
              curve(0.5, 0.5, 0.5)]
    assert rule.should_stop(0, curve(0.55), [], others)  # 6 values at rung 0: only the best 2 go on
    assert not rule.should_stop(0, curve(0.85), [], others)
    assert not rule.should_stop(1, curve(0.55, 0.1), [], others)  # epoch 1 is no rung
    assert not rule.should_stop(0, curve(0.1), [], others[:1])  # fewer than min_trials at the rung


def test_no_rule_never_stops():
    from extf.tuning.pruning import PruningRule

    assert not PruningRule("none", "max").should_stop(5, curve(0, 0, 0, 0, 0, 0), [curve(1, 1, 1, 1, 1, 1)] * 5,
                                                      [curve(1, 1, 1, 1, 1, 1)] * 5)


def make_oracle(tmp_path, rule):
    import keras_tuner as kt

    from extf.tuning.pruning import with_pruning

    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    cls = with_pruning(kt.oracles.RandomSearchOracle)
    oracle = cls(objective=kt.Objective("val_accuracy", "max"), max_trials=10, hyperparameters=hp,
                 tune_new_entries=False, seed=1, pruning=rule)
    oracle._set_project_dir(str(tmp_path), "search")
    return oracle


def run_trial(oracle, values) -> tuple[str, int]:
    """Report `values` epoch by epoch as a tuner's on_epoch_end does; stop when the answer says STOPPED."""
    from keras_tuner.engine import trial as kt_trial

    from extf.tuning.pruning import pruned_epoch

    trial = oracle.create_trial("tuner0")
    for epoch, value in enumerate(values):
        answer = oracle.update_trial(trial.trial_id, {"val_accuracy": value}, step=epoch)
        if answer.status == kt_trial.TrialStatus.STOPPED:
            assert pruned_epoch(answer) == epoch
            break
        assert pruned_epoch(answer) is None
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial.trial_id, epoch


def test_the_oracle_answers_stopped_for_a_pruned_trial_and_remembers_it(tmp_path):
    from keras_tuner.engine import trial as kt_trial

    from extf.tuning.pruning import PruningRule

    oracle = make_oracle(tmp_path, PruningRule("median", "max", warmup_epochs=1, min_trials=2))
    good = [0.5, 0.7, 0.8, 0.85, 0.86]
    assert run_trial(oracle, good)[1] == 4 and run_trial(oracle, good)[1] == 4  # nothing to compare with yet
    tid, stopped_at = run_trial(oracle, [0.2, 0.3, 0.35, 0.4, 0.45])
    assert stopped_at == 1 and oracle.pruned == {tid: 1}
    assert oracle.trials[tid].status == kt_trial.TrialStatus.COMPLETED  # ended FINISHED, values kept
    assert oracle.trials[tid].score == pytest.approx(0.3)
    assert not oracle.trials[tid].metrics.exists("extf/pruned_at_epoch")  # only in the answer
    assert run_trial(oracle, good)[1] == 4
    oracle.save()
    again = make_oracle(tmp_path, PruningRule("median", "max", warmup_epochs=1, min_trials=2))
    again.reload()
    assert again.pruned == {tid: 1}


def test_pruned_trials_do_not_count_among_the_finished_ones_the_median_takes(tmp_path):
    from extf.tuning.pruning import PruningRule

    oracle = make_oracle(tmp_path, PruningRule("median", "max", warmup_epochs=0, min_trials=1))
    run_trial(oracle, [0.9, 0.9])
    pruned, _ = run_trial(oracle, [0.1, 0.1])
    assert pruned in oracle.pruned
    assert oracle._finished_histories("x") == [{0: 0.9, 1: 0.9}]


def test_a_trials_last_planned_epoch_is_never_pruned_nor_recorded(tmp_path):
    """The tuner marks the value of a trial's last planned epoch: a trial that trained in full stays among the
    finished ones the median compares with, and the marker is no metric of the trial's."""
    from keras_tuner.engine import trial as kt_trial

    from extf.tuning.pruning import FINAL_EPOCH, PruningRule

    oracle = make_oracle(tmp_path, PruningRule("median", "max", warmup_epochs=0, min_trials=1))
    run_trial(oracle, [0.5, 0.9])
    trial = oracle.create_trial("tuner0")
    assert oracle.update_trial(trial.trial_id, {"val_accuracy": 0.6}, step=0).status != kt_trial.TrialStatus.STOPPED
    answer = oracle.update_trial(trial.trial_id, {"val_accuracy": 0.7, FINAL_EPOCH: 1.0}, step=1)  # 0.7 < 0.9
    assert answer.status != kt_trial.TrialStatus.STOPPED and oracle.pruned == {}
    assert not oracle.trials[trial.trial_id].metrics.exists(FINAL_EPOCH)
    trial.status = kt_trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert oracle._finished_histories("x") == [{0: 0.5, 1: 0.9}, {0: 0.6, 1: 0.7}]
    other = oracle.create_trial("tuner0")  # the same values without the marker: pruned at the second epoch
    oracle.update_trial(other.trial_id, {"val_accuracy": 0.6}, step=0)
    assert oracle.update_trial(other.trial_id, {"val_accuracy": 0.7}, step=1).status == kt_trial.TrialStatus.STOPPED
    assert oracle.pruned == {other.trial_id: 1}
