"""Pieces of the distributed search and the server command that need no training."""

from __future__ import annotations

import json

import pytest

from extf.errors import ConfigError
from extf.objective import Objective
from extf.tuning.distributed import requeue_orphans, worker_main
from extf.tuning.state import collect_best


def write_best(d, trial: dict, weights: bytes) -> None:
    d.mkdir(parents=True)
    (d / "trial.json").write_text(json.dumps({"trial": trial, "history": {}, "hyperparameters": {}}))
    (d / "model.weights.h5").write_bytes(weights)


def test_collect_best_takes_the_best_worker_and_breaks_ties_on_val_loss(tmp_path):
    write_best(tmp_path / "workers" / "worker0" / "best", {"trial_id": "0", "val_accuracy": 0.9,
                                                          "val_loss_min": 0.3}, b"w0")
    write_best(tmp_path / "workers" / "worker1" / "best", {"trial_id": "1", "val_accuracy": 0.9,
                                                          "val_loss_min": 0.2}, b"w1")
    write_best(tmp_path / "workers" / "worker2" / "best", {"trial_id": "2", "val_accuracy": 0.8,
                                                          "val_loss_min": 0.1}, b"w2")
    assert collect_best(tmp_path, Objective("val_accuracy", "max"))
    assert (tmp_path / "best" / "model.weights.h5").read_bytes() == b"w1"
    assert json.loads((tmp_path / "best" / "trial.json").read_text())["trial"]["trial_id"] == "1"
    # minimising: the lowest value wins
    assert collect_best(tmp_path, Objective("val_loss_min", "min"))
    assert (tmp_path / "best" / "model.weights.h5").read_bytes() == b"w2"


def test_collect_best_picks_by_the_studys_rule_the_front_and_the_constraints(tmp_path):
    """With several objectives the workers' best trials are compared as each process compared its own (tuner.select
    =first): a tie on the first objective goes to the trial that dominates on the others, not to the lower
    val_loss_min; a trial that misses a constraint is never picked."""
    from extf.tuning.pareto import Goal, Objectives, parse_constraints

    write_best(tmp_path / "workers" / "worker0" / "best", {"trial_id": "0", "val_accuracy": 0.9, "params": 500,
                                                          "val_loss_min": 0.3}, b"w0")
    write_best(tmp_path / "workers" / "worker1" / "best", {"trial_id": "1", "val_accuracy": 0.9, "params": 900,
                                                          "val_loss_min": 0.2}, b"w1")
    write_best(tmp_path / "workers" / "worker2" / "best", {"trial_id": "2", "val_accuracy": 0.95, "params": 9000,
                                                          "val_loss_min": 0.1}, b"w2")
    acc = Objective("val_accuracy", "max")
    goals = (Goal("val_accuracy", "max"), Goal("params", "min"))
    assert collect_best(tmp_path, acc, Objectives(goals, tuple(parse_constraints(["params <= 1000"], list(goals)))))
    assert (tmp_path / "best" / "model.weights.h5").read_bytes() == b"w0"
    assert collect_best(tmp_path, acc, Objectives(goals))  # no constraint: the best accuracy
    assert (tmp_path / "best" / "model.weights.h5").read_bytes() == b"w2"
    for d in (tmp_path / "best", tmp_path / "workers" / "worker2" / "best"):  # the two of them: workers 0 and 1
        (d / "trial.json").unlink()
    assert collect_best(tmp_path, acc)  # one objective: the leaderboard's tie-break
    assert (tmp_path / "best" / "model.weights.h5").read_bytes() == b"w1"


def test_collect_best_without_any_finished_trial(tmp_path):
    assert not collect_best(tmp_path, Objective("val_accuracy", "max"))


class FakeOracle:
    def __init__(self):
        self.ongoing_trials = {"tuner0": type("T", (), {"trial_id": "3"})(),
                               "worker0": type("T", (), {"trial_id": "4"})()}
        self._retry_queue = []
        self.saved = 0

    def save(self):
        self.saved += 1


def test_requeue_orphans_gives_other_tuners_trials_back_to_the_queue():
    oracle = FakeOracle()
    assert requeue_orphans(oracle, {"worker0", "worker1"}) == 1
    assert list(oracle.ongoing_trials) == ["worker0"] and oracle._retry_queue == ["3"] and oracle.saved == 1
    assert requeue_orphans(oracle, {"worker0"}) == 0 and oracle.saved == 1


@pytest.mark.parametrize("env, args, needle", [
    ({}, ["/x"], "needs the environment variables KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP ("),
    ({"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "h", "KERASTUNER_ORACLE_PORT": "1"}, ["/x"],
     "must not contain 'chief'"),
    ({"KERASTUNER_TUNER_ID": "w", "KERASTUNER_ORACLE_IP": "h", "KERASTUNER_ORACLE_PORT": "1"}, [], "one argument"),
    ({"KERASTUNER_TUNER_ID": "w", "KERASTUNER_ORACLE_IP": "h", "KERASTUNER_ORACLE_PORT": "1"}, ["/nonexistent"],
     "Cannot read '/nonexistent/worker.json'"),
])
def test_worker_bad_input(monkeypatch, env, args, needle):
    for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match="Received") as e:
        worker_main(args)
    assert needle in str(e.value)


@pytest.mark.parametrize("args, needle", [
    (["restart"], "start, stop or status"), (["start", "port=99999"], "TCP port"),
    (["start", "db=x;drop"], "database name"), (["start", "host=0.0.0.0"], "unknown option 'host=0.0.0.0'"),
])
def test_server_bad_input(args, needle):
    from extf.commands.server import parse

    with pytest.raises(ConfigError, match="Received") as e:
        parse(args)
    assert needle in str(e.value)


def test_the_oracle_holder_keeps_its_state_in_tuner0_and_goes_on_with_a_chiefs_older_worker0(tmp_path):
    from extf.tuning.tuner import StudyTuner

    def tuner(tuner_id: str, worker: bool) -> StudyTuner:
        t = StudyTuner.__new__(StudyTuner)  # only the file name: no oracle needed
        t.directory, t.project_name, t.tuner_id, t._is_worker = str(tmp_path), "study", tuner_id, lambda: worker
        return t

    project, chief = tmp_path / "study", tuner("worker0", worker=False)
    state = chief._get_tuner_fname()
    assert state == str(project / "tuner0.json")  # a study alone or a chief: one file, whichever its tuner id
    (project / "worker0.json").write_text("{}")  # the chief's file of a study begun before tuner0.json
    assert chief._get_tuner_fname() == str(project / "worker0.json")
    (project / "tuner0.json").write_text("{}")
    assert chief._get_tuner_fname() == state
    assert tuner("worker1", worker=True)._get_tuner_fname() == str(project / "worker1.json")


class FakeProc:
    def __init__(self, code=None):
        self.code = code

    def poll(self):
        return self.code


def local_workers(tmp_path, procs: dict):
    from omegaconf import OmegaConf

    from extf.tuning.chief import LocalWorkers

    cfg = OmegaConf.create({"tuner": {"oracle_host": "127.0.0.1", "threads_per_worker": 1, "max_worker_restarts": 0}})
    workers = LocalWorkers(cfg, tmp_path, "token", out=None)
    workers.procs = procs
    return workers


def test_the_chief_starts_its_first_trial_once_every_local_worker_has_asked_for_one(tmp_path):
    import threading
    import time

    workers = local_workers(tmp_path, {"worker1": FakeProc(), "worker2": FakeProc(), "worker3": FakeProc(code=0)})
    threading.Timer(0.3, workers.asked.add, ["worker1"]).start()
    threading.Timer(0.6, workers.asked.add, ["worker2"]).start()  # worker3 has ended: not waited for
    started = time.monotonic()
    workers.wait_started(timeout=30)
    assert 0.55 < time.monotonic() - started < 5 and workers.asked == {"worker1", "worker2"}

    started = time.monotonic()  # a worker that never asks: the chief goes on after the timeout
    local_workers(tmp_path, {"worker1": FakeProc()}).wait_started(timeout=0.4)
    assert 0.35 < time.monotonic() - started < 5

    failing = local_workers(tmp_path, {"worker1": FakeProc()})  # a worker failed while starting: no wait
    failing.error = RuntimeError("boom")
    started = time.monotonic()
    failing.wait_started(timeout=30)
    assert time.monotonic() - started < 1


def test_the_oracle_server_records_which_tuners_asked_for_a_trial(tmp_path):
    import grpc
    import keras_tuner as kt
    from keras_tuner.src import protos

    from extf.tuning.distributed import serve_oracle

    hp = kt.HyperParameters()
    hp.Float("lr", 1e-3, 1e-1)
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=3, hyperparameters=hp, seed=1)
    oracle._set_project_dir(str(tmp_path), "study")
    asked: set[str] = set()
    server, port = serve_oracle(oracle, "127.0.0.1", 0, asked=asked)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = protos.get_service_grpc().OracleStub(channel)
            response = stub.CreateTrial(protos.get_service().CreateTrialRequest(tuner_id="worker1"), timeout=30)
        assert asked == {"worker1"} and response.trial.trial_id
    finally:
        server.stop(grace=0)
