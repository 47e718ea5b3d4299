"""One order for trials everywhere: the study's best, its leaderboard, `extf runs run_id=`, `extf report`."""

from __future__ import annotations

from types import SimpleNamespace

from extf.objective import Objective, ranked_trials
from extf.tracking.runs import ranked_trial_runs
from extf.tuning.state import collect_best

ACC = Objective("val_accuracy", "max")
LOSS = Objective("val_mae", "min")


def test_rank_orders_by_objective_then_lower_val_loss():
    assert ACC.rank(0.9, 0.5) < ACC.rank(0.8, 0.1)
    assert ACC.rank(0.9, 0.2) < ACC.rank(0.9, 0.3)  # a tie: the lower validation loss first
    assert ACC.rank(0.9, 0.3) < ACC.rank(0.9, None)  # a known loss before an unknown one
    assert LOSS.rank(0.1) < LOSS.rank(0.2)


def test_study_leaderboard_puts_the_tie_break_winner_first():
    trials = [{"trial_id": "0", "val_accuracy": 0.95, "val_loss_min": 0.30},
              {"trial_id": "1", "val_accuracy": None, "status": "FAILED"},
              {"trial_id": "2", "val_accuracy": 0.95, "val_loss_min": 0.20},
              {"trial_id": "3", "val_accuracy": 0.90, "val_loss_min": 0.10}]
    assert [t["trial_id"] for t in ranked_trials(trials, ACC)] == ["2", "0", "3", "1"]


def run(trial_id, status="FINISHED", value=None, loss=None):
    metrics = {k: v for k, v in (("val_accuracy_best", value), ("val_loss_min", loss)) if v is not None}
    return SimpleNamespace(info=SimpleNamespace(status=status, run_name=f"trial-{trial_id}"),
                           data=SimpleNamespace(tags={"extf.trial_id": trial_id}, metrics=metrics, params={}))


def test_logged_trial_runs_rank_the_same_way():
    runs = [run("10", value=0.95, loss=0.3), run("2", "FAILED"), run("3", value=0.95, loss=0.2),
            run("1", "KILLED", value=0.99), run("0", value=0.9, loss=0.1)]
    client = SimpleNamespace(search_runs=lambda *a, **k: list(runs))
    parent = SimpleNamespace(info=SimpleNamespace(experiment_id="1", run_id="p"))
    ranked = ranked_trial_runs(client, parent, ACC)
    # a KILLED run's partial value does not count; the unfinished ones follow in trial-id order
    assert [r.data.tags["extf.trial_id"] for r in ranked] == ["3", "10", "0", "1", "2"]


def test_workers_best_is_the_tie_break_winner(tmp_path):
    import json

    for where, loss in (("best", 0.3), ("workers/worker1/best", 0.2), ("workers/worker2/best", 0.25)):
        d = tmp_path / where
        d.mkdir(parents=True)
        (d / "model.weights.h5").write_text(where)
        (d / "trial.json").write_text(json.dumps({"trial": {"val_accuracy": 0.95, "val_loss_min": loss}}))
    assert collect_best(tmp_path, ACC)
    assert (tmp_path / "best" / "model.weights.h5").read_text() == "workers/worker1/best"
