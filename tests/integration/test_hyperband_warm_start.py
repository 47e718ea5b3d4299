"""Hyperband warm start: a trial promoted to a later round continues its parent's weights and trains only the epochs
the round adds; a parent whose weights are missing means training from scratch, not a failed trial."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import extf_in_process

pytestmark = pytest.mark.slow

MAX_EPOCHS = 4
# max_epochs=4, factor=2: the first bracket is 4 trials x 1 epoch, 2 of them go on to 2 epochs, 1 of those to 4;
# 7 trials are that bracket exactly
HYPERBAND = ["tune", "dataset=digits", "model=mlp", "tuner=hyperband", f"tuner.max_epochs={MAX_EPOCHS}",
             "tuner.factor=2", "tuner.max_trials=7", "tracking=none", "evaluation.plots=false",
             "~callbacks.early_stopping", "~callbacks.reduce_lr_on_plateau"]  # keeps the checkpoint and the CSV log


def history(trial_dir: Path) -> list[dict]:
    with open(trial_dir / "history.csv", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_promoted_trials_continue_their_parents_weights(tmp_path):
    proc = extf_in_process(HYPERBAND, tmp_path)  # the search is the subject, not the process
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study, = (tmp_path / "outputs" / "studies").iterdir()
    search = study / "tuner" / "search"
    recorded = {}
    for line in (study / "trials.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        recorded[row["trial_id"]] = row
    assert len(recorded) == 7 and {r["status"] for r in recorded.values()} == {"FINISHED"}
    tuner = {tid: json.loads((search / f"trial_{tid}" / "trial.json").read_text())["hyperparameters"]["values"]
             for tid in recorded}

    promoted = {tid: hp for tid, hp in tuner.items() if hp.get("tuner/trial_id")}
    assert {hp["tuner/round"] for hp in promoted.values()} == {1, 2}  # a chain: round 0 -> 1 -> 2
    for tid, hp in tuner.items():
        added = hp["tuner/epochs"] - hp["tuner/initial_epoch"]
        assert recorded[tid]["epochs"] == added, (tid, hp)  # what trials.jsonl (and bench P4) counts
        rows = history(search / f"trial_{tid}")
        assert [int(r["epoch"]) for r in rows] == list(range(hp["tuner/initial_epoch"], hp["tuner/epochs"]))
    for tid, hp in promoted.items():
        parent = history(search / f"trial_{hp['tuner/trial_id']}")
        child = history(search / f"trial_{tid}")
        # from scratch, the child's first epoch would repeat the parent's first one (same hyperparameters, seed)
        assert child[0]["loss"] < parent[0]["loss"], (tid, child[0], parent[0])
        assert child[0]["val_loss"] < parent[0]["val_loss"], (tid, child[0], parent[0])
    assert "weights are missing" not in proc.stdout

    # disk: once the search is over nothing is continued any more: no warm start and no checkpoint stays
    assert sorted(search.glob("trial_*/*.h5")) == []


class _Trial:
    def __init__(self, trial_id: str, values: dict):
        import keras_tuner as kt

        self.trial_id = trial_id
        self.hyperparameters = kt.HyperParameters()
        self.hyperparameters.values = dict(values)
        self.status = kt.engine.trial.TrialStatus.RUNNING
        self.message = None


def test_warm_start_and_a_missing_parent_fall_back_to_scratch(make_cfg, tmp_path, monkeypatch):
    import dataclasses

    import keras_tuner as kt

    from extf.tracking.mlflow_tracker import make_tracker
    from extf.tuning.context import TrialContext
    from extf.tuning.prepare import prepare_search
    from extf.tuning.recorder import TrialRecorder
    from extf.tuning.state import StudyState
    from extf.tuning.tuner import make_tuner
    from extf.tuning.warm_start import WARM_START

    cfg = make_cfg(["dataset=iris", "model=mlp", "search_space=none", "tuner=hyperband",
                    f"tuner.max_epochs={MAX_EPOCHS}", "tuner.factor=2", "tracking=none", "callbacks=none",
                    "trainer.batch_size=16"], command="tune")
    inputs = prepare_search(cfg)
    state = StudyState(tmp_path / "study")
    state.prepare(overwrite=False)
    out = io.StringIO()
    recorder = TrialRecorder(cfg, state, inputs.objective, out)
    histories = {}

    def record(result):
        histories[result.trial_id] = result.history
        recorder.record(result)

    ctx = TrialContext(cfg, inputs.splits, inputs.objective, make_tracker(cfg, cfg.experiment_name), record,
                       recorder.say)
    tuner = make_tuner(ctx, inputs.space, tmp_path / "tuner", overwrite=True)
    monkeypatch.setattr(tuner.oracle, "end_trial", lambda trial: None)  # these trials are not the oracle's
    monkeypatch.setattr(tuner, "save", lambda: None)
    search = Path(tuner.project_dir)

    def run(trial_id, values):
        """keras-tuner's loop for one trial: on_trial_begin, run_trial, on_trial_end."""
        trial = _Trial(trial_id, values)
        tuner.on_trial_begin(trial)
        result = tuner.run_trial(trial)
        trial.status = kt.engine.trial.TrialStatus.COMPLETED
        tuner.on_trial_end(trial)
        return result

    round0 = {"tuner/epochs": 2, "tuner/initial_epoch": 0, "tuner/bracket": 1, "tuner/round": 0}
    run("00", round0)
    assert (search / "trial_00" / WARM_START).is_file()

    # init_from (unreadable here: loading it would stop the study) gives way to the parent's weights
    tuner.ctx = dataclasses.replace(ctx, init_weights=tmp_path / "no-such.weights.h5")

    promoted = {"tuner/trial_id": "00", "tuner/epochs": 4, "tuner/initial_epoch": 2, "tuner/bracket": 1,
                "tuner/round": 1}
    run("01", promoted)
    assert len(histories["01"]["loss"]) == 2
    assert histories["01"]["loss"][0] < histories["00"]["loss"][0]
    assert not (search / "trial_00" / WARM_START).exists()  # continued once: no longer needed
    assert not (search / "trial_01" / WARM_START).exists()  # trained max_epochs: the last round

    # the parent's weights are gone: the trial trains all its epochs from scratch, and says so once
    tuner.ctx = ctx
    result = run("02", promoted)
    assert set(result) == {"val_accuracy", "params"}  # the objective, and the parameter count extf always takes
    assert len(histories["02"]["loss"]) == 4
    assert [t["status"] for t in state.trials] == ["FINISHED"] * 3
    assert [t["epochs"] for t in state.trials] == [2, 2, 4]
    text = out.getvalue()
    assert text.count("weights are missing") == 1 and "trains from scratch for 4 epochs" in text
