"""Search policies wired into a real study: Optuna's TPE as the oracle, median pruning stopping trials at an epoch
(recorded FINISHED with extf.pruned), a time budget ending the study, and the configs they refuse."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import assert_clean_error, run_extf, running_runs

QUICK = ["dataset=digits", "model=mlp", "callbacks=none", "evaluation.plots=false", "tracking.log_model=false"]


def trial_rows(tmp_path) -> list[dict]:
    (rows,) = list((tmp_path / "outputs" / "studies").glob("*/trials.jsonl"))
    return [json.loads(line) for line in rows.read_text().splitlines()]


@pytest.mark.slow
def test_tpe_with_median_pruning_stops_worse_trials_and_says_so(tmp_path):
    proc = run_extf(["tune", *QUICK, "tuner=tpe", "tuner.pruning=median", "tuner.pruning_warmup_epochs=1",
                     "tuner.pruning_min_trials=2", "tuner.max_trials=8", "trainer.epochs=6",
                     "optimizer.learning_rate=0.001", "+search_space.optimizer.learning_rate="
                     "{type: float, low: 1.0e-5, high: 1.0e-2, sampling: log}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = trial_rows(tmp_path)
    pruned = [r for r in rows if r.get("pruned_at_epoch")]
    assert pruned, proc.stdout  # learning rates down to 1e-5 train far slower than the median
    assert all(r["status"] == "FINISHED" and r["epochs"] == r["pruned_at_epoch"] < 6 for r in pruned)
    assert "pruned at epoch" in proc.stdout and "test (evaluated once)" in proc.stdout
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        tagged = con.execute("select r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                             "where t.key = 'extf.pruned_epoch'").fetchall()
    assert sorted(int(v) for _, v in tagged) == sorted(r["pruned_at_epoch"] for r in pruned)
    assert {s for s, _ in tagged} == {"FINISHED"}
    assert running_runs(tmp_path / "mlruns") == []


@pytest.mark.slow
def test_a_time_budget_ends_the_study_and_it_is_still_tested_once(tmp_path):
    proc = run_extf(["tune", *QUICK, "tuner.time_budget=8", "tuner.max_trials=200", "trainer.epochs=20"],
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = trial_rows(tmp_path)
    assert 1 <= len(rows) < 200
    assert proc.stdout.count("test (evaluated once)") == 1
    assert "time budget tuner.time_budget=8 spent after" in proc.stdout
    assert "budget left" in proc.stdout  # each trial's progress line
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        (reason,) = con.execute("select value from tags where key = 'extf.stop_reason'").fetchone()
    assert reason == "time_budget"


@pytest.mark.parametrize("args, needles", [
    (["tuner=grid", "tuner.pruning=median"], ["tuner.pruning=median does not go with tuner=grid"]),
    (["tuner=hyperband", "tuner.pruning=asha"], ["does not go with tuner=hyperband"]),
    (["tuner.time_budget=0"], ["tuner.time_budget must be a positive duration", "Received: tuner.time_budget="]),
    (["tuner.time_budget=-5m"], ["tuner.time_budget must be a positive duration"]),
    (["tuner.pruning=sometimes"], ["tuner.pruning", "sometimes"]),
    (["tuner.pruning_factor=1"], ["tuner.pruning_factor"]),
], ids=["grid", "hyperband", "budget-0", "budget-negative", "rule", "factor"])
def test_policies_that_cannot_work_are_one_message_before_any_trial(tmp_path, args, needles):
    proc = run_extf(["tune", *QUICK, *args], cwd=tmp_path)
    assert_clean_error(proc, *needles)
    assert not (tmp_path / "outputs" / "studies").exists() or not list((tmp_path / "outputs" / "studies").glob("*/trials.jsonl"))


@pytest.mark.slow
def test_cross_validation_scores_trials_on_folds_and_retrains_the_final_model_on_train_and_val(tmp_path):
    proc = run_extf(["tune", "dataset=iris", "model=mlp", "callbacks=none", "evaluation.plots=false",
                     "tracking.log_model=false", "tuner.cv_folds=3", "tuner.max_trials=2", "trainer.epochs=6"],
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = trial_rows(tmp_path)
    assert all(r["epochs"] == 18 and 1 <= r["cv_epochs"] <= 6 for r in rows), rows  # 3 folds x 6 epochs
    assert "retrained on train + validation (120 samples)" in proc.stdout
    assert "baseline (logistic regression (standardized), same training split): val_accuracy=" in proc.stdout
    assert proc.stdout.count("test (evaluated once)") == 1
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        keys = {k for (k,) in con.execute("select distinct key from metrics")}
        tags = dict(con.execute("select key, value from tags where key like 'extf.final%'").fetchall())
    assert {"fold_0.val_accuracy", "fold_2.val_accuracy", "val_accuracy_std", "fold_1.val_accuracy_best",
            "baseline_val_accuracy", "baseline_test_accuracy"} <= keys
    assert tags["extf.final_model"] == "retrained on train+validation"
    assert int(tags["extf.final_epochs"]) in {r["cv_epochs"] for r in rows}


@pytest.mark.parametrize("args, needles", [
    (["dataset=iris", "tuner.cv_folds=1"], ["tuner.cv_folds must be 0", "Received: tuner.cv_folds=1"]),
    (["dataset=iris", "tuner.cv_folds=60"], ["smallest class has", "Received: tuner.cv_folds=60"]),
    (["dataset=sine", "model=rnn", "tuner.cv_folds=3"], ["time order", "tuner.cv_method=time_series"]),
    (["dataset=iris", "tuner=hyperband", "tuner.cv_folds=3"], ["does not go with tuner=hyperband"]),
], ids=["one-fold", "more-than-a-class", "sequence", "hyperband"])
def test_folds_that_cannot_be_made_stop_the_study_before_any_trial(tmp_path, args, needles):
    proc = run_extf(["tune", "model=mlp", "evaluation.plots=false", *args], cwd=tmp_path)
    assert_clean_error(proc, *needles)
    assert "[trial" not in proc.stdout
    assert running_runs(tmp_path / "mlruns") == []
