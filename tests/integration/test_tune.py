"""`extf tune`: parent + nested trial runs, resume after kill -9, test labels never steer the search, sweeps."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import assert_clean_error, extf_in_process, run_extf, running_runs, trial_rows

pytestmark = pytest.mark.slow

TUNE = ["tune", "experiment_name=resume", "dataset=iris", "model=mlp", "tuner.max_trials=4", "trainer.epochs=40",
        "~callbacks.early_stopping", "~callbacks.reduce_lr_on_plateau", "trainer.batch_size=8",
        "tracking.log_model=false"]


def child_runs(db, status=None):
    with sqlite3.connect(db) as con:
        rows = con.execute("select r.run_uuid, r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                           "where t.key = 'extf.trial_id'").fetchall()
    return [r for r in rows if status is None or r[1] == status]


def parent_runs(db):
    with sqlite3.connect(db) as con:
        return con.execute("select r.run_uuid, r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                           "where t.key = 'extf.kind' and t.value = 'study'").fetchall()


# kill -9 at random moments, killed workers and a killed chief: tests/e2e/test_faults.py


@pytest.mark.parametrize("sig", [signal.SIGINT], ids=["SIGINT"])  # SIGTERM takes the same path (cli.py)
def test_interrupt_ends_runs_killed_and_the_study_resumes(tmp_path, sig):
    db = tmp_path / "mlruns" / "mlflow.db"
    env = {**os.environ, "EXTF_ROOT": str(tmp_path)}
    args = [*TUNE, "tuner.max_trials=2"]
    proc = subprocess.Popen([sys.executable, "-m", "extf.cli", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if db.exists() and child_runs(db, "RUNNING"):
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.2)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "interrupted" in output and "again to resume" in output
    assert running_runs(tmp_path / "mlruns") == []
    assert [s for _, s in parent_runs(db)] == ["KILLED"]
    assert child_runs(db, "KILLED")
    again = extf_in_process(args, tmp_path)  # the resumed study is the subject, not its process
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(child_runs(db, "FINISHED")) == 2 and [s for _, s in parent_runs(db)] == ["FINISHED"]


def test_shuffled_test_labels_do_not_change_the_search(make_cfg, monkeypatch):
    """The test split reaches only the final evaluation: shuffling its labels changes the test metrics and nothing
    of the search. The study uses Bayesian optimisation, whose trials after the first two are drawn from the scores
    of the earlier ones (random search draws independently of scores), so anything of the test split that reached
    the oracle's scores would change later trials' hyperparameters, not just a number.

    Five trials of 2 epochs. Mutation check (2026-12-02, this workload): the oracle getting the model's accuracy on
    the test split (the leaderboard still showing val_accuracy) fails the comparison of the trials (at trial 5: three
    trials did not show it); so does fitting with validation_data=test."""
    import extf.data
    from extf.tuning.study import Study

    def search(shuffle: bool):
        real = extf.data.load_dataset

        def load(cfg, seed, *args, **kwargs):
            splits = real(cfg, seed, *args, **kwargs)
            if not shuffle:
                return splits
            y = np.random.default_rng(0).permutation(splits.test.y)
            return replace(splits, test=replace(splits.test, y=y))

        monkeypatch.setattr(extf.data, "load_dataset", load)
        cfg = make_cfg(["dataset=wine", "model=mlp", "tuner=bayesian", "tuner.num_initial_points=2",
                        "tuner.max_trials=5", "trainer.epochs=2", "tracking=none", "tuner.overwrite=true",
                        "evaluation.plots=false"],
                       command="tune")
        study = Study(cfg, out=io.StringIO())
        summary = study.run()
        trials = [(t["trial_id"], t["val_accuracy"], {k: v for k, v in t.items() if "." in k}) for t in study.state.trials]
        return study.state.best_hp, trials, summary["test_metrics"]

    hp_a, trials_a, test_a = search(False)
    hp_b, trials_b, test_b = search(True)
    assert len(trials_a) == 5 and trials_a == trials_b
    assert hp_a == hp_b
    assert test_a != test_b  # the shuffled labels did reach the (single) test evaluation


def test_determinism_gives_the_same_leaderboard(make_cfg):
    from extf.tuning.study import Study

    def leaderboard():
        cfg = make_cfg(["dataset=wine", "model=mlp", "tuner.max_trials=3", "trainer.epochs=4", "tracking=none",
                        "tuner.overwrite=true", "determinism=true", "evaluation.plots=false"], command="tune")
        study = Study(cfg, out=io.StringIO())
        study.run()
        return [(t["trial_id"], t["val_accuracy"], {k: v for k, v in t.items() if "." in k}) for t in study.state.trials]

    assert leaderboard() == leaderboard()


def test_objective_the_model_does_not_produce_is_fatal(tmp_path):
    proc = extf_in_process(["tune", "dataset=iris", "model=mlp", "tuner.max_trials=2", "trainer.epochs=1",
                            "tuner.objective.name=val_auc"], tmp_path)
    assert_clean_error(proc, "val_auc", "val_accuracy", "tuner.objective.name")
    assert running_runs(tmp_path / "mlruns") == []


def test_bad_search_space_fails_before_any_trial(tmp_path):
    proc = extf_in_process(["tune", "dataset=iris", "model=mlp",
                            "+search_space.model.unitz={type: int, low: 1, high: 2}"], tmp_path)
    assert_clean_error(proc, "search_space.model.unitz")
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or not parent_runs(tmp_path / "mlruns" / "mlflow.db")


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["sequential", "joblib"])
def test_multirun_sweep_is_one_study_per_job(tmp_path, launcher):
    """The sequential sweep runs in this process (its studies are the subject); joblib's jobs are processes."""
    args = ["tune", "-m", *launcher, "dataset=iris,wine", "model=mlp", "tuner.max_trials=1", "trainer.epochs=2",
            "tracking.log_model=false"]
    proc = run_extf(args, cwd=tmp_path) if launcher else extf_in_process(args, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    parents = parent_runs(tmp_path / "mlruns" / "mlflow.db")
    assert len(parents) == 2 and {s for _, s in parents} == {"FINISHED"}
    studies = list((tmp_path / "outputs" / "studies").iterdir())
    assert len(studies) == 2
    # jobs may print at once: each of their lines says which job it comes from
    for job in ("0", "1"):
        assert f"[job {job}] [trial 1/1]" in proc.stdout and f"[job {job}] study extf: best" in proc.stdout


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    def extf(args):  # in this process: the study's records are the subject, not its process
        return extf_in_process(args, tmp_path)

    # num_blocks=4 shrinks 8x8 digits below one pixel: that trial fails, the grid's next one finishes
    proc = extf(["tune", "model=cnn", "tuner=grid", "search_space=none", "trainer.epochs=1",
                 "+search_space.model.num_blocks={type: choice, values: [4, 1]}", "tracking.log_model=false"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "below 1x1" in proc.stdout
    db = tmp_path / "mlruns" / "mlflow.db"
    assert len(child_runs(db, "FAILED")) == 1 and len(child_runs(db, "FINISHED")) == 1
    with sqlite3.connect(db) as con:
        reason = con.execute("select value from tags where key = 'extf.failure_reason'").fetchone()[0]
    assert "below 1x1" in reason

    listing = extf(["runs"])
    assert listing.returncode == 0 and "test_accuracy" in listing.stdout and "FINISHED" in listing.stdout
    (parent_id, _), = parent_runs(db)
    board = extf(["runs", f"run_id={parent_id}"])
    lines = board.stdout.splitlines()
    assert board.returncode == 0 and "model.num_blocks" in lines[1]
    assert "FINISHED" in lines[2] and "FAILED" in lines[3]  # best first, failed last


def test_runs_bad_input(tmp_path):
    assert_clean_error(extf_in_process(["runs"], tmp_path), "no MLflow store")
    assert_clean_error(extf_in_process(["runs", "colour=red"], tmp_path),
                       "unknown option 'colour=red'")


def test_sweep_with_unknown_option_lists_the_options(tmp_path):
    proc = extf_in_process(["tune", "-m", "dataset=iris,irs", "model=mlp"], tmp_path)
    assert_clean_error(proc, "no dataset named 'irs'", "breast_cancer", "Received: dataset=irs")


def test_extending_a_finished_study_tests_its_new_best(tmp_path):
    """A larger tuner.max_trials runs the new trials in the same parent run; when the best trial changes, the study
    is tested again and its best.* tags follow it (MLflow params could not change). Both commands run in this
    process: the study they leave is the subject, not their process."""
    import json

    from mlflow import MlflowClient

    study = ["tune", "dataset=breast_cancer", "model=mlp", "callbacks=none", "trainer.epochs=2",
             "evaluation.plots=false", "tracking.log_model=false"]
    first = extf_in_process([*study, "tuner.max_trials=2"], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    bigger = extf_in_process([*study, "tuner.max_trials=6"], tmp_path)  # seed 42: trial 5 is best
    assert bigger.returncode == 0, bigger.stdout + bigger.stderr
    (parent_id, status), = parent_runs(tmp_path / "mlruns" / "mlflow.db")
    assert status == "FINISHED" and len(child_runs(tmp_path / "mlruns" / "mlflow.db", "FINISHED")) == 6
    run = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db").get_run(parent_id)
    study_dir, = (tmp_path / "outputs" / "studies").iterdir()
    trials = {t["trial_id"]: t for t in map(json.loads, (study_dir / "trials.jsonl").read_text().splitlines())}
    best = trials[run.data.tags["best_trial_id"]]
    assert best["trial_id"] != "1", "the workload no longer changes the best trial: pick another"
    assert {k[len("best."):]: v for k, v in run.data.tags.items() if k.startswith("best.")} == \
        {k: str(v) for k, v in best.items() if "." in k}  # the hyperparameters (dotted config keys)
    state = json.loads((study_dir / "study.json").read_text())
    assert state["tested_trial"] == best["trial_id"]
    assert state["test_metrics"]["test_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"])


def test_runs_counts_the_finished_trials_of_an_interrupted_study(tmp_path):
    """`finished_trials` is logged when a study is tested; before that (interrupted, running) extf runs counts the
    study's FINISHED trial runs."""
    from mlflow import MlflowClient

    from extf.tracking.runs import list_studies

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e")
    parent = client.create_run(exp, tags={"extf.kind": "study"}).info.run_id
    for status in ("FINISHED", "FINISHED", "KILLED"):
        child = client.create_run(exp, tags={"mlflow.parentRunId": parent, "extf.kind": "trial"}).info.run_id
        client.set_terminated(child, status=status)
    client.set_terminated(parent, status="KILLED")
    (row,) = list_studies(uri)
    assert row["status"] == "KILLED" and row["trials"] == 2


def test_workers_progress_lines_show_the_study_wide_best(tmp_path):
    """Each worker's line counts every worker's trials and shows the best of all of them so far."""
    import re

    proc = run_extf(["tune", "dataset=iris", "model=mlp", "callbacks=none", "trainer.epochs=3", "tuner.max_trials=6",
                     "tuner.workers=2", "tracking=none", "evaluation.plots=false"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = re.findall(r"^\[(worker\d)\] \[trial (\d+)/6\] .*val_accuracy=([\d.]+)  best=([\d.]+)", proc.stdout,
                       re.MULTILINE)
    assert len(lines) == 6 and {w for w, *_ in lines} == {"worker0", "worker1"}, proc.stdout
    assert max(int(n) for _, n, _, _ in lines) == 6
    # a line counting n trials read the study's trials.jsonl with n rows in it, so it saw every trial whose line
    # counts fewer (that one's row was already there when it counted)
    for _, n, value, best in lines:
        before = [float(v) for _, m, v, _ in lines if int(m) < int(n)]
        assert float(best) >= max([float(value), *before]) - 1e-4, proc.stdout


@pytest.mark.long
def test_a_study_resumed_with_workers_or_without_continues_its_oracle(tmp_path):
    """The study's own process keeps the oracle's state whether it searches alone or as the chief of workers: resumed
    with more trials, in either mode, it runs only the new ones (a chief that started a fresh oracle ran trial 0
    again, each time a trial had finished before the study stopped)."""
    base = ["tune", "dataset=iris", "model=mlp", "callbacks=none", "trainer.epochs=3", "tracking=none",
            "evaluation.plots=false", "experiment_name=modes"]
    for trials, workers in ((2, 2), (3, 2), (4, 1), (5, 2)):
        proc = run_extf([*base, f"tuner.max_trials={trials}", f"tuner.workers={workers}"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        ids = sorted(row["trial_id"] for row in trial_rows(tmp_path))
        assert ids == [str(i) for i in range(trials)], (trials, workers, ids, proc.stdout)
