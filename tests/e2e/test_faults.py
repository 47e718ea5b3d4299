"""Fault injection on real studies: kill -9 at random moments, killed workers, a killed chief, Ctrl-C in distributed
mode. After each, the same command finishes the study: exactly max_trials finished trials, no run left RUNNING, the
tuner and oracle files intact, the same parent run continued."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, run_extf, running_runs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STUDY = ["tune", "dataset=iris", "model=mlp", "trainer.epochs=25", "callbacks=none", "trainer.batch_size=16",
         "tracking.log_model=false", "evaluation.plots=false"]


def query(db: Path, sql: str) -> list:
    for _ in range(50):  # the study may be writing right now
        try:
            with sqlite3.connect(db, timeout=5) as con:
                return con.execute(sql).fetchall()
        except sqlite3.OperationalError:
            time.sleep(0.1)
    raise AssertionError(f"cannot read {db}")


def trial_runs(db: Path, status: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """(run id, status, trial id, worker) of every trial run."""
    if not db.exists():
        return []
    rows = query(db, "select r.run_uuid, r.status, t.value, (select w.value from tags w where w.run_uuid = r.run_uuid "
                     "and w.key = 'extf.worker') from runs r join tags t on t.run_uuid = r.run_uuid "
                     "where t.key = 'extf.trial_id'")
    return [r for r in rows if status is None or r[1] == status]


def study_runs(db: Path) -> list[tuple[str, str]]:
    return query(db, "select r.run_uuid, r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                     "where t.key = 'extf.kind' and t.value = 'study'")


def parents_of_trials(db: Path) -> set[str]:
    return {v for (v,) in query(db, "select t.value from tags t where t.key = 'mlflow.parentRunId'")}


def start(args: list[str], cwd: Path, own_group: bool = False) -> subprocess.Popen:
    """`own_group`: in a process group of its own (with the workers it starts), as a shell runs a command."""
    env = {**os.environ, "EXTF_ROOT": str(cwd)}
    env.pop("EXTF_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "extf.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=own_group)


def wait_for(condition, timeout: float = 180, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError("the study ended first:\n" + proc.stdout.read())
        time.sleep(0.2)
    raise AssertionError("timed out")


def worker_pids(study_dir_parent: Path) -> dict[str, int]:
    """pid of each running `extf worker` process of this project, by tuner id."""
    out = {}
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmd = (proc_dir / "cmdline").read_bytes().split(b"\0")
            env = (proc_dir / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmd and any(str(study_dir_parent).encode() in c for c in cmd):
            ids = [e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"KERASTUNER_TUNER_ID=")]
            if ids:
                out[ids[0]] = int(proc_dir.name)
    return out


def assert_state_files_intact(root: Path, require: bool = True) -> None:
    """Every JSON file keras-tuner and extf keep for the study parses (they are written atomically)."""
    files = list((root / "outputs" / "studies").rglob("*.json"))
    assert files or not require
    for f in files:
        json.loads(f.read_text(encoding="utf-8"))
    for f in (root / "outputs" / "studies").rglob("trials.jsonl"):
        for line in f.read_text(encoding="utf-8").splitlines()[:-1]:
            json.loads(line)
    assert not list((root / "outputs" / "studies").rglob("*.tmp*")), "a temporary file was left behind"


def trial_open(root: Path, since: float) -> bool:
    """Whether the process started at `since` had a trial running: keras-tuner's oracle.json, saved by that process,
    lists an ongoing trial (the oracle saves it when it hands a trial out and again when the trial ends)."""
    for f in (root / "outputs" / "studies").rglob("oracle.json"):
        try:
            if f.stat().st_mtime >= since and json.loads(f.read_text(encoding="utf-8")).get("ongoing_trials"):
                return True
        except (OSError, json.JSONDecodeError):
            continue
    return False


def assert_study_complete(root: Path, n_trials: int) -> None:
    db = root / "mlruns" / "mlflow.db"
    finished = trial_runs(db, "FINISHED")
    assert sorted(int(t) for _, _, t, _ in finished) == list(range(n_trials)), finished
    assert running_runs(root / "mlruns") == []
    (parent,) = study_runs(db)  # one parent run, continued by every re-run
    assert parent[1] == "FINISHED"
    assert parents_of_trials(db) == {parent[0]}
    assert_state_files_intact(root)


@pytest.mark.long
def test_kill_9_at_random_moments_then_resume(tmp_path):
    """kill -9 three times, then the same command completes the study. The first two kills land at random moments
    (start-up or a trial); the third waits until a trial runs, so at least one kill interrupts a trial, and the
    test checks that it did (keras-tuner's oracle had a trial out when the process died).

    Mutation check (2026-12-01): with Study no longer ending the stale trial runs on resume
    (tracker.end_stale_trials), the interrupted trial's run stays RUNNING and assert_study_complete fails."""
    rng = random.Random(int(os.environ.get("EXTF_FAULT_SEED", "7")))
    args = [*STUDY, "experiment_name=faults", "tuner.max_trials=6"]
    db = tmp_path / "mlruns" / "mlflow.db"
    kills, mid_trial = 0, 0
    for i in range(3):  # start, kill -9 somewhere between start-up and the middle of the study
        started = time.time()
        proc = start(args, tmp_path)
        if i < 2:
            time.sleep(rng.uniform(4, 14))
        else:
            wait_for(lambda since=started: trial_open(tmp_path, since), proc=proc)
            time.sleep(rng.uniform(0, 0.5))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate()
        mid_trial += trial_open(tmp_path, started)
        assert_state_files_intact(tmp_path, require=False)
    assert kills >= 2 and mid_trial >= 1, (kills, mid_trial)
    done = run_extf(args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_study_complete(tmp_path, 6)
    # the killed trials' runs ended KILLED when the study resumed; none was counted as finished
    assert len(trial_runs(db)) == 6 + len(trial_runs(db, "KILLED"))


@pytest.mark.long
def test_distributed_worker_killed_reruns_its_trial(tmp_path):
    args = [*STUDY, "experiment_name=workers", "tuner.max_trials=4", "tuner.workers=2", "trainer.epochs=60"]
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = start(args, tmp_path)
    wait_for(lambda: len(trial_runs(db, "RUNNING")) == 2, proc=proc)
    # the chief runs trials itself as worker0; worker1 is a process of its own
    (running,) = [r for r in trial_runs(db, "RUNNING") if r[3] == "worker1"]
    victim = "worker1"
    pids = worker_pids(tmp_path)
    assert set(pids) == {"worker1"}, pids
    os.kill(pids[victim], signal.SIGKILL)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert f"[{victim}] stopped by a signal" in output
    killed = trial_runs(db, "KILLED")
    assert [(t, w) for _, _, t, w in killed] == [(running[2], victim)]
    assert_study_complete(tmp_path, 4)
    assert {w for _, _, _, w in trial_runs(db, "FINISHED")} == {"worker0", "worker1"}


@pytest.mark.long
def test_distributed_chief_killed_workers_stop_and_the_study_resumes(tmp_path):
    args = [*STUDY, "experiment_name=chief", "tuner.max_trials=4", "tuner.workers=2", "trainer.epochs=60"]
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = start(args, tmp_path)
    # a trial finished before the kill: the resumed study must not run it again (a chief that did not reload its
    # oracle ran every trial again, which only this case shows)
    wait_for(lambda: len(trial_runs(db, "RUNNING")) == 2 and trial_runs(db, "FINISHED"), proc=proc)
    proc.kill()
    proc.communicate()
    # the orphaned worker notices and stops on its own, ending its trial run KILLED; the chief's own trial run
    # (kill -9 gives it no chance) is ended KILLED when the study resumes
    wait_for(lambda: not worker_pids(tmp_path), timeout=60)
    assert [w for _, _, _, w in trial_runs(db, "KILLED")] == ["worker1"]
    assert [w for _, _, _, w in trial_runs(db, "RUNNING")] == ["worker0"]
    again = run_extf(args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Resuming study" in again.stdout
    assert len(trial_runs(db, "KILLED")) == 2
    assert_study_complete(tmp_path, 4)


@pytest.mark.long
@pytest.mark.parametrize("to", ["chief", "terminal"])
def test_distributed_ctrl_c_ends_everything_killed(tmp_path, to):
    """SIGINT to the chief alone, or to the whole process group as a terminal's Ctrl-C sends it (then the workers
    get it too, and none is restarted)."""
    args = [*STUDY, "experiment_name=ctrlc", "tuner.max_trials=4", "tuner.workers=2", "trainer.epochs=60"]
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = start(args, tmp_path, own_group=to == "terminal")
    wait_for(lambda: len(trial_runs(db, "RUNNING")) == 2, proc=proc)
    if to == "terminal":  # the workers' signal acted on first, the chief's later (its main thread was busy)
        for pid in worker_pids(tmp_path).values():
            os.kill(pid, signal.SIGINT)
        time.sleep(1.5)
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "restarting it" not in output, output
    assert running_runs(tmp_path / "mlruns") == []
    assert [s for _, s in study_runs(db)] == ["KILLED"]
    assert not worker_pids(tmp_path)


def test_nan_trial_is_failed_and_the_search_goes_on(tmp_path):
    """A trial whose loss turns NaN ends FAILED with the reason; the other trials and the study finish."""
    proc = run_extf(["tune", "dataset=iris", "model=mlp", "optimizer=sgd", "callbacks=none", "trainer.epochs=3",
                     "tuner=grid", "search_space=none", "tracking.log_model=false", "evaluation.plots=false",
                     "+search_space.optimizer.learning_rate={type: choice, values: [1.0e12, 0.05]}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = tmp_path / "mlruns" / "mlflow.db"
    assert sorted(status for _, status, _, _ in trial_runs(db)) == ["FAILED", "FINISHED"]
    (failed_id, *_), = trial_runs(db, "FAILED")
    reason, = query(db, f"select value from tags where run_uuid = '{failed_id}' and key = 'extf.failure_reason'")
    assert "diverged" in reason[0], reason
    assert [status for _, status in study_runs(db)] == ["FINISHED"]
    assert running_runs(tmp_path / "mlruns") == []


@pytest.mark.parametrize("where", ["run dir", "study dir"])
def test_output_dir_that_cannot_be_written_is_one_clear_error(tmp_path, where):
    """outputs/ cannot be written (here a file stands where the directory goes, which stops root too): one message
    naming the path, and no run created. "run dir": Hydra's run directory is under it too; "study dir": only the
    study's directory (Hydra's run directory elsewhere)."""
    (tmp_path / "outputs").write_text("not a directory")
    extra, needle = (([], f"cannot create '{tmp_path / 'outputs'}/") if where == "run dir" else
                     ([f"hydra.run.dir={tmp_path / 'run'}"],
                      f"Cannot write to the output directory '{tmp_path / 'outputs' / 'studies'}/"))
    proc = run_extf([*STUDY, "tuner.max_trials=1", *extra], cwd=tmp_path)
    assert_clean_error(proc, needle, "Not a directory", "paths.root_dir=")
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or trial_runs(tmp_path / "mlruns" / "mlflow.db") == []
    assert running_runs(tmp_path / "mlruns") == []


def tracking_process_of(pid: int) -> int | None:
    """pid of the MLflow tracking process (extf.tracking.process) started by process `pid`."""
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmd = (proc_dir / "cmdline").read_bytes()
            ppid = int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"extf.tracking.process" in cmd:
            return int(proc_dir.name)
    return None


@pytest.mark.long
def test_tracking_process_killed_is_one_clear_error_and_the_study_resumes(tmp_path):
    """kill -9 of the study's MLflow tracking process mid-trial: one message saying what stopped and that the same
    command resumes, no traceback; the re-run ends the runs left RUNNING and finishes the study."""
    args = [*STUDY, "experiment_name=lost", "tuner.max_trials=3", "trainer.epochs=40"]
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = start(args, tmp_path)
    wait_for(lambda: len(trial_runs(db, "RUNNING")) == 1, proc=proc)
    os.kill(tracking_process_of(proc.pid), signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    assert "The MLflow tracking process of this study stopped" in output and "re-run the same command" in output
    again = run_extf(args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Resuming study" in again.stdout
    assert_study_complete(tmp_path, 3)


@pytest.mark.long
def test_terminal_ctrl_c_reaches_the_tracking_process_too(tmp_path):
    """A terminal's Ctrl-C signals the whole process group, the tracking process included: it keeps serving, so the
    trial and the study still end KILLED; the process is gone afterwards."""
    args = [*STUDY, "experiment_name=group", "tuner.max_trials=2", "trainer.epochs=60"]
    db = tmp_path / "mlruns" / "mlflow.db"
    proc = start(args, tmp_path, own_group=True)
    wait_for(lambda: len(trial_runs(db, "RUNNING")) == 1, proc=proc)
    tracker_pid = tracking_process_of(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    assert [s for _, s, _, _ in trial_runs(db)] == ["KILLED"]
    assert [s for _, s in study_runs(db)] == ["KILLED"]
    assert running_runs(tmp_path / "mlruns") == []
    assert tracker_pid is not None and not Path(f"/proc/{tracker_pid}").exists()
