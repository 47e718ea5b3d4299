"""Several objectives in a real study: NSGA-II (Optuna) searching validation accuracy and parameter count, the measures
on every trial run, a constraint deciding which trial is tested, the Pareto front as an artifact and in the report;
and the objective lists the config refuses before any trial."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests import forked_cli
from tests.conftest import assert_clean_error, extf_in_process, run_extf, running_runs

QUICK = ["dataset=iris", "model=mlp", "callbacks=none", "tracking.log_model=false", "trainer.epochs=4"]
SPACE = "+search_space.model.units={type: choice, values: [4, 16, 64, 256]}"


def study_dir(tmp_path):
    (d,) = list((tmp_path / "outputs" / "studies").glob("*"))
    return d


def rows_of(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (study_dir(tmp_path) / "trials.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.long)], ids=["one-process", "two-workers"])
def test_nsga2_logs_the_front_and_tests_the_best_trial_under_the_constraint(tmp_path, workers):
    """With two workers (three processes: make test-long, as the other policies with tuner.workers=2), the real
    command; in one process, the command runs in this one (the search is the subject, not its process)."""
    args = ["tune", *QUICK, "tuner=nsga2", "tuner.max_trials=6", "tuner.num_initial_points=4",
            "tuner.objectives=[auto,params,latency_ms]", "tuner.constraints=['params <= 1500']", SPACE,
            f"tuner.workers={workers}"]
    proc = run_extf(args, cwd=tmp_path) if workers else extf_in_process(args, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [r for r in rows_of(tmp_path) if r["status"] == "FINISHED"]
    assert len(rows) == 6
    assert all(r["params"] > 0 and r["latency_ms"] > 0 for r in rows)
    best = json.loads((study_dir(tmp_path) / "best" / "trial.json").read_text())["trial"]
    feasible = [r for r in rows if r["params"] <= 1500]
    assert best["params"] <= 1500 and best["val_accuracy"] == max(r["val_accuracy"] for r in feasible)
    record = json.loads((study_dir(tmp_path) / "artifacts" / "pareto_front.json").read_text())
    assert [o["name"] for o in record["objectives"]] == ["val_accuracy", "params", "latency_ms"]
    assert record["selected_trial"] == best["trial_id"]
    assert all(p["feasible"] for p in record["trials"] if p["on_front"])
    assert (study_dir(tmp_path) / "artifacts" / "plots" / "pareto_front.png").exists()
    assert "Pareto front of val_accuracy / params / latency_ms" in proc.stdout
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as con:
        trial_metrics = {k for (k,) in con.execute(
            "select distinct m.key from metrics m join tags t on t.run_uuid = m.run_uuid "
            "where t.key = 'extf.kind' and t.value = 'trial'")}
        (size,) = con.execute("select value from metrics where key = 'pareto_front_size'").fetchone()
    assert {"params", "latency_ms"} <= trial_metrics
    assert size == sum(p["on_front"] for p in record["trials"])
    assert running_runs(tmp_path / "mlruns") == []
    if workers:
        return
    report = extf_in_process(["report", "output=report.html"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert "plots/pareto_front.png" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_a_constraint_no_trial_meets_is_one_message_and_nothing_is_tested(tmp_path):
    proc = extf_in_process(["tune", *QUICK, "tuner.max_trials=2", "tuner.constraints=['params < 10']"], tmp_path)
    assert_clean_error(proc, "None of the 2 finished trials meets tuner.constraints (params < 10)",
                       "params from", "Received: tuner.constraints=")
    assert "test (evaluated once)" not in proc.stdout
    assert running_runs(tmp_path / "mlruns") == []


@pytest.mark.parametrize("args, needles", [
    (["tuner=nsga2", "tuner.objectives=[auto]"], ["tuner=nsga2 searches several objectives",
                                                   "Received: tuner.objectives=['auto']"]),
    (["tuner.objectives=[val_auc,params]"], ["The objective metric 'val_auc' is not produced by this model",
                                              "val_accuracy", "Received: tuner.objectives='val_auc'"]),
    (["tuner.objectives=[auto,val_auc]"], ["The objective metric 'val_auc' is not produced"]),
    (["tuner.objective.name=val_auc"], ["The objective metric 'val_auc' is not produced",
                                        "Received: tuner.objective.name='val_auc'"]),
    (["tuner.objectives=[params,auto]"], ["Put params after it"]),
    (["tuner.constraints=['flops <= 5']"], ["'flops' is not a measure extf takes"]),
], ids=["nsga2-one-objective", "first-not-produced", "second-not-produced", "objective-not-produced",
        "measure-first", "unknown-measure"])
def test_objectives_that_cannot_work_are_one_message_before_any_trial(tmp_path, args, needles):
    proc = forked_cli.run(["tune", *QUICK, "evaluation.plots=false", *args], tmp_path)
    assert_clean_error(proc, *needles)
    assert "[trial" not in proc.stdout
    assert running_runs(tmp_path / "mlruns") == []
