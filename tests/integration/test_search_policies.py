"""Search policies wired into a real study: Optuna's TPE as the oracle, median pruning stopping trials at an epoch
(recorded FINISHED with extf.pruned), a time budget ending the study, and the configs they refuse."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from tests import forked_cli
from tests.conftest import assert_clean_error, extf_in_process, run_extf, running_runs, trial_rows

QUICK = ["dataset=digits", "model=mlp", "callbacks=none", "evaluation.plots=false", "tracking.log_model=false"]


@pytest.mark.slow
def test_tpe_with_median_pruning_stops_worse_trials_and_says_so(tmp_path):
    # in this process (as the two tests below): the policy is the subject, not the command's process
    proc = extf_in_process(["tune", *QUICK, "tuner=tpe", "tuner.pruning=median", "tuner.pruning_warmup_epochs=1",
                            "tuner.pruning_min_trials=2", "tuner.max_trials=8", "trainer.epochs=6",
                            "optimizer.learning_rate=0.001", "+search_space.optimizer.learning_rate="
                            "{type: float, low: 1.0e-5, high: 1.0e-2, sampling: log}"], tmp_path)
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
    proc = extf_in_process(["tune", *QUICK, "tuner.time_budget=8", "tuner.max_trials=200", "trainer.epochs=20"],
                           tmp_path)
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
    (["tuner.objective.name=val_loss", "+search_space.model.l2={type: float, low: 1.0e-5, high: 1.0e-1}"],
     ["search_space searches model.l2, but the objective val_loss includes the L2 penalty", "val_accuracy"]),
], ids=["grid", "hyperband", "budget-0", "budget-negative", "rule", "factor", "l2-on-val-loss"])
def test_policies_that_cannot_work_are_one_message_before_any_trial(tmp_path, args, needles):
    proc = forked_cli.run(["tune", *QUICK, *args], tmp_path)
    assert_clean_error(proc, *needles)
    assert not (tmp_path / "outputs" / "studies").exists() or not list((tmp_path / "outputs" / "studies").glob("*/trials.jsonl"))


def fold_losses(mlruns) -> dict[str, list[list[float]]]:
    """Each trial's folds' val_loss by epoch, from the trial runs' step-indexed fold_<k>.val_loss."""
    with sqlite3.connect(mlruns / "mlflow.db") as con:
        rows = con.execute("select t.value, m.key, m.step, m.value from metrics m join tags t on t.run_uuid = "
                           "m.run_uuid where t.key = 'extf.trial_id' and m.key like 'fold_%.val_loss' "
                           "order by m.step").fetchall()
    folds: dict[str, dict[str, list[float]]] = {}
    for trial_id, key, _, value in rows:
        folds.setdefault(trial_id, {}).setdefault(key, []).append(value)
    return {t: [curves[k] for k in sorted(curves)] for t, curves in folds.items()}


@pytest.mark.slow
def test_cross_validation_scores_trials_on_folds_and_retrains_the_final_model_on_train_and_val(tmp_path):
    proc = extf_in_process(["tune", "dataset=iris", "model=mlp", "callbacks=early_stopping",
                            "callbacks.early_stopping.patience=2", "evaluation.plots=false",
                            "tracking.log_model=false", "tuner.cv_folds=3", "tuner.max_trials=2", "trainer.epochs=30"],
                           tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = trial_rows(tmp_path)
    assert "retrained on train + validation (120 samples)" in proc.stdout
    assert "baseline (logistic regression (standardized), same training split): val_accuracy=" in proc.stdout
    assert proc.stdout.count("test (evaluated once)") == 1
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        keys = {k for (k,) in con.execute("select distinct key from metrics")}
        tags = dict(con.execute("select key, value from tags where key like 'extf.final%'").fetchall())
    assert {"fold_0.val_accuracy", "fold_2.val_accuracy", "val_accuracy_std", "fold_1.val_accuracy_best",
            "baseline_val_accuracy", "baseline_test_accuracy"} <= keys
    # the final model's epochs: the mean over folds of early stopping's restored epoch (its first lowest
    # val_loss), not the first best val_accuracy (the objective), which iris reaches within a few epochs
    losses = fold_losses(tmp_path / "mlruns")
    for r in rows:
        curves = losses[r["trial_id"]]
        assert len(curves) == 3 and r["epochs"] == sum(len(c) for c in curves), (r, curves)
        assert r["cv_epochs"] == max(1, round(sum(c.index(min(c)) + 1 for c in curves) / 3)), (r, curves)
    assert tags["extf.final_model"] == "retrained on train+validation"
    assert int(tags["extf.final_epochs"]) in {r["cv_epochs"] for r in rows}


@pytest.mark.parametrize("args, needles", [
    (["dataset=iris", "tuner.cv_folds=1"], ["tuner.cv_folds must be 0", "Received: tuner.cv_folds=1"]),
    (["dataset=iris", "tuner.cv_folds=60"], ["smallest class has", "Received: tuner.cv_folds=60"]),
    (["dataset=sine", "model=rnn", "tuner.cv_folds=3"], ["time order", "tuner.cv_method=time_series"]),
    (["dataset=iris", "tuner=hyperband", "tuner.cv_folds=3"], ["does not go with tuner=hyperband"]),
], ids=["one-fold", "more-than-a-class", "sequence", "hyperband"])
def test_folds_that_cannot_be_made_stop_the_study_before_any_trial(tmp_path, args, needles):
    proc = forked_cli.run(["tune", "model=mlp", "evaluation.plots=false", *args], tmp_path)
    assert_clean_error(proc, *needles)
    assert "[trial" not in proc.stdout
    assert running_runs(tmp_path / "mlruns") == []


# the same policies with a distributed search (tuner.workers=2): the chief's oracle prunes, keeps the budget and
# hands out the trials; each worker trains its trials' folds


def worker_of_each_trial(mlruns) -> dict[str, str]:
    with sqlite3.connect(mlruns / "mlflow.db") as con:
        return dict(con.execute("select t.value, w.value from tags t join tags w on w.run_uuid = t.run_uuid "
                                "where t.key = 'extf.trial_id' and w.key = 'extf.worker'").fetchall())


@pytest.mark.slow
@pytest.mark.long  # three processes each: make test-long
def test_pruning_with_two_workers_stops_trials_in_both_processes(tmp_path):
    proc = run_extf(["tune", *QUICK, "tuner=tpe", "tuner.workers=2", "tuner.pruning=median",
                     "tuner.pruning_warmup_epochs=1", "tuner.pruning_min_trials=2", "tuner.max_trials=10",
                     "trainer.epochs=6", "optimizer.learning_rate=0.001", "+search_space.optimizer.learning_rate="
                     "{type: float, low: 1.0e-5, high: 1.0e-2, sampling: log}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = trial_rows(tmp_path)
    assert len(rows) == 10
    pruned = [r for r in rows if r.get("pruned_at_epoch")]
    assert pruned, proc.stdout
    assert all(r["status"] == "FINISHED" and r["epochs"] == r["pruned_at_epoch"] < 6 for r in pruned)
    assert set(worker_of_each_trial(tmp_path / "mlruns").values()) == {"worker0", "worker1"}
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        tagged = con.execute("select r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                             "where t.key = 'extf.pruned_epoch'").fetchall()
    assert sorted(int(v) for _, v in tagged) == sorted(r["pruned_at_epoch"] for r in pruned)
    assert {s for s, _ in tagged} == {"FINISHED"}
    assert proc.stdout.count("test (evaluated once)") == 1
    assert running_runs(tmp_path / "mlruns") == []


@pytest.mark.slow
@pytest.mark.long  # three processes each: make test-long
def test_a_time_budget_with_two_workers_ends_every_worker_and_the_study_is_tested_once(tmp_path):
    proc = run_extf(["tune", *QUICK, "tuner.workers=2", "tuner.time_budget=20", "tuner.max_trials=200",
                     "trainer.epochs=40"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = trial_rows(tmp_path)
    assert 1 <= len(rows) < 200 and all(r["status"] == "FINISHED" for r in rows)
    assert proc.stdout.count("test (evaluated once)") == 1
    assert "time budget tuner.time_budget=20 spent after" in proc.stdout
    # every process's progress lines show the time left: the workers count down to the deadline in worker.json
    lines = [ln for ln in proc.stdout.splitlines() if re.match(r"(\[worker\d+\] )?\[trial \d+/", ln)]
    assert all("budget left" in ln for ln in lines), proc.stdout
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        (reason,) = con.execute("select value from tags where key = 'extf.stop_reason'").fetchone()
    assert reason == "time_budget"
    assert running_runs(tmp_path / "mlruns") == []


@pytest.mark.slow
@pytest.mark.long  # three processes each: make test-long
def test_cross_validation_with_two_workers_retrains_the_best_trial_of_either(tmp_path):
    proc = run_extf(["tune", "dataset=iris", "model=mlp", "callbacks=early_stopping",
                     "callbacks.early_stopping.patience=2", "evaluation.plots=false", "tracking.log_model=false",
                     "tuner.workers=2", "tuner.cv_folds=3", "tuner.max_trials=4", "trainer.epochs=20"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["trial_id"]: r for r in trial_rows(tmp_path)}
    assert len(rows) == 4 and all(r["status"] == "FINISHED" and r["cv_epochs"] >= 1 for r in rows.values())
    assert set(worker_of_each_trial(tmp_path / "mlruns").values()) == {"worker0", "worker1"}
    assert {len(c) for c in fold_losses(tmp_path / "mlruns").values()} == {3}
    study = json.loads(next((tmp_path / "outputs" / "studies").glob("*/study.json")).read_text())
    best = json.loads(next((tmp_path / "outputs" / "studies").glob("*/best/trial.json")).read_text())["trial"]
    assert best == rows[best["trial_id"]]  # the best of both workers' trials
    assert best["val_accuracy"] == max(r["val_accuracy"] for r in rows.values())
    assert study["tested_trial"] == best["trial_id"] and "test_accuracy" in study["test_metrics"]
    assert (f"retrained on train + validation (120 samples) for {best['cv_epochs']} epochs" in proc.stdout)
    assert proc.stdout.count("test (evaluated once)") == 1
    assert running_runs(tmp_path / "mlruns") == []
