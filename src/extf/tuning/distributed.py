"""Distributed search with keras-tuner's own protocol: the `extf tune` process serves the chief oracle (gRPC) and
supervises N worker processes; each worker asks the oracle for trials (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT) and logs them as child runs of the study's parent run.

A worker killed by a signal is restarted under the same tuner id: the oracle hands it the trial it was running, so that
trial runs again (extf.tuning.chief). Workers on other machines join with `extf worker STUDY_DIR` (see README,
"Scaling out").
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError, ExtfError
from extf.tuning.context import TrialContext
from extf.tuning.prepare import (
    apply_determinism,
    fatal_cause,
    open_tracker,
    prepare_search,
    start_tracking_process,
)
from extf.tuning.recorder import TrialRecorder
from extf.tuning.state import StudyState, write_json_atomic

WORKER_FILE = "worker.json"
ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
ENV_TOKEN = "EXTF_STUDY_TOKEN"  # local workers: the worker.json of this `extf tune` process, not a stale one
READY_TIMEOUT = 600.0  # seconds a worker waits for the chief to serve the oracle
START_TIMEOUT = 120.0  # seconds the chief waits for its local workers' first request before its own first trial
KILLED_CODES = {130, 137, 143}  # 128 + SIGINT / SIGKILL / SIGTERM, as a shell reports them


def worker_ids(n: int) -> list[str]:
    return [f"worker{i}" for i in range(n)]


def default_threads(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def requeue_orphans(oracle, keep: set[str]) -> int:
    """Trials the oracle still holds for tuner ids that will not ask again (a study resumed with fewer workers, or
    in the other mode) go back to the queue, so they run again instead of blocking the end of the search."""
    orphans = [tid for tid in list(oracle.ongoing_trials) if tid not in keep]
    for tid in orphans:
        trial = oracle.ongoing_trials.pop(tid)
        oracle._retry_queue.append(trial.trial_id)
    if orphans:
        oracle.save()
    return len(orphans)


def quiet_conditions() -> None:
    """keras-tuner 1.4.8's conditions.Parent.to_proto prints its first value (a leftover debug print) each time a
    conditional hyperparameter crosses gRPC; the same conversion without the print."""
    from keras_tuner.src import protos
    from keras_tuner.src.engine import conditions

    def to_proto(self):
        first = self.values[0]
        kind = ("string_value" if isinstance(first, str) else "boolean_value" if isinstance(first, bool)
                else "int_value" if isinstance(first, int) else "float_value")
        proto = protos.get_proto()
        return proto.Condition(parent=proto.Condition.Parent(
            name=self.name, values=[proto.Value(**{kind: v}) for v in self.values]))

    conditions.Parent.to_proto = to_proto


def _synchronize_saves(oracle) -> None:
    """The chief's own search loop saves the oracle (BaseTuner.save) while the gRPC thread may change it: take the
    oracle's lock for saves too (keras-tuner's `synchronized` is re-entrant per thread)."""
    from keras_tuner.src.engine.oracle import synchronized

    if not getattr(oracle, "_extf_synchronized_save", False):
        save = type(oracle).save
        oracle.save = lambda: synchronized(save)(oracle)
        oracle._extf_synchronized_save = True


def serve_oracle(oracle, host: str, port: int, asked: set[str] | None = None):
    """Start keras-tuner's OracleServicer for `oracle` on host:port (0 = a free port); returns (server, port).
    `asked` collects the tuner ids that have asked for a trial (the chief waits for its local workers' first)."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class Servicer(OracleServicer):
        def CreateTrial(self, request, context):  # noqa: N802 - gRPC method name
            if asked is not None:
                asked.add(request.tuner_id)
            return super().CreateTrial(request, context)

        def EndTrial(self, request, context):  # noqa: N802 - gRPC method name
            response = super().EndTrial(request, context)
            # keras-tuner saves the oracle before it drops the trial from the ongoing ones; save again, or a
            # resumed study would run the last trial twice
            self.oracle.save()
            return response

    quiet_conditions()
    _synchronize_saves(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # the oracle handles one request at a time
    protos.get_service_grpc().add_OracleServicer_to_server(Servicer(oracle), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(f"The chief oracle cannot listen on {host}:{port} (address in use or not on this machine). "
                          f"Expected a free port on a local address; set tuner.oracle_port=0 for any free port. "
                          f"Received: tuner.oracle_host={host!r}, tuner.oracle_port={port}")
    server.start()
    return server, bound


def announce_study(study_dir: Path, cfg_container: dict, token: str) -> None:
    """worker.json, first half: the config, so workers started now load TensorFlow, the data and the tracking store
    while the chief still sets up; `ready` is false until the chief serves the oracle (`write_worker_file`)."""
    write_json_atomic(study_dir / WORKER_FILE, {"token": token, "ready": False, "config": cfg_container})


def write_worker_file(study_dir: Path, cfg_container: dict, token: str, parent_run_id: str | None,
                      init_weights: Path | None, port: int, budget_deadline: float | None = None) -> None:
    """worker.json, complete: where the oracle listens, which parent run the trials belong to, and when the time
    budget ends (time.time(); None without one), which a worker's progress lines count down to."""
    write_json_atomic(study_dir / WORKER_FILE, {"token": token, "ready": True, "config": cfg_container,
                                                "parent_run_id": parent_run_id, "oracle_port": port,
                                                "init_weights": str(init_weights) if init_weights else None,
                                                "budget_deadline": budget_deadline})


def budget_deadline(oracle) -> float | None:
    """When the chief oracle's time budget ends, as time.time() (None without one): what worker.json tells the
    workers, whose progress lines count down to it (their oracle client cannot ask the chief for the time left)."""
    time_left = getattr(oracle, "time_left", None)
    left = time_left() if callable(time_left) else None
    return None if left is None else time.time() + left


def read_worker_file(study_dir: Path, token: str | None = None, wait: float = 0.0, ready: bool = False) -> dict:
    """worker.json of the study (of the `extf tune` process with this token, when given; ready: once the chief
    serves the oracle), polled for up to `wait` seconds."""
    path = study_dir / WORKER_FILE
    deadline = time.monotonic() + wait
    while True:
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            error = None
        except (OSError, json.JSONDecodeError) as e:
            info, error = None, e
        if info is not None and (token is None or info.get("token") == token) and (info.get("ready") or not ready):
            return info
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if error is not None:
        raise ConfigError(f"Cannot read {str(path)!r} ({getattr(error, 'strerror', None) or error}). Expected the "
                          f"study directory of a running `extf tune tuner.workers=N`. Received: {str(study_dir)!r}")
    raise ExtfError(f"The chief did not start serving its oracle within {wait:.0f} s ({path} is not ready). "
                    f"Expected a running `extf tune tuner.workers=N` for this study directory; start it first. "
                    f"Received: {str(study_dir)!r}")


def watch_parent(parent_pid: int) -> None:
    """A local worker stops (SIGTERM: its trial run ends KILLED) when the `extf tune` process that started it dies,
    even by kill -9. A thread that polls, since prctl(PDEATHSIG) needs code between fork and exec, which gRPC's
    threads in the chief make unsafe."""
    import threading

    def poll() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=poll, name="extf-watch-parent", daemon=True).start()


class RemoteWorker:
    """A worker process of a distributed search (`extf worker`, started by the chief or on another machine): loads
    everything, waits until the chief serves its oracle (`wait_ready` returns the complete worker.json), then runs the
    trials the oracle hands out until it says stop. Its best trial stays in workers/<id>/best for the chief."""

    def __init__(self, cfg: DictConfig, study_dir: Path, worker_id: str, wait_ready: Callable[[], dict], out=sys.stdout):
        self.cfg = cfg
        self.study_dir = study_dir
        self.worker_id = worker_id
        self.wait_ready = wait_ready
        self.out = out
        self.started = time.time()

    def run(self) -> None:
        process = start_tracking_process(self.cfg, self.cfg.experiment_name)  # before TensorFlow's import
        try:
            _set_threads()
            quiet_conditions()
            self._work(process)
        finally:
            if process is not None:
                process.close()

    def _work(self, process) -> None:
        import keras_tuner as kt

        from extf.tuning.tuner import make_tuner

        cfg = self.cfg
        # the slow part (TensorFlow, the data, the tracking store) runs before the chief is ready, then this waits
        inputs = prepare_search(cfg)
        state = StudyState(self.study_dir, best_dir=self.study_dir / "workers" / self.worker_id / "best")
        state.best_dir.mkdir(parents=True, exist_ok=True)
        tracker = open_tracker(cfg, cfg.experiment_name, process)
        apply_determinism(cfg)
        info = self.wait_ready()
        os.environ.setdefault(ENV_PORT, str(info["oracle_port"]))  # keras-tuner's client reads it from here
        state.restore(inputs.objective)
        recorder = TrialRecorder(cfg, state, inputs.objective, self.out, self.worker_id, self.started,
                                 inputs.objectives)
        ctx = TrialContext(cfg, inputs.splits, inputs.objective, tracker, recorder.record, recorder.say,
                           parent_run_id=info["parent_run_id"], worker_id=self.worker_id,
                           init_weights=Path(info["init_weights"]) if info.get("init_weights") else None,
                           folds=inputs.folds, objectives=inputs.objectives,
                           budget_deadline=info.get("budget_deadline"))
        tuner = make_tuner(ctx, inputs.space, self.study_dir / "tuner", overwrite=False)
        try:
            tuner.search(verbose=0)
        except kt.errors.FatalError as e:
            raise fatal_cause(e) from None


def worker_main(args: list[str]) -> int:
    """`extf worker STUDY_DIR`: run trials for the chief oracle named by the KERASTUNER_* environment variables."""
    if len(args) != 1 or args[0].startswith("-"):
        raise ConfigError("extf worker takes one argument, the study directory the chief printed (on a shared "
                          "file system). Usage: KERASTUNER_TUNER_ID=w1 KERASTUNER_ORACLE_IP=HOST "
                          f"KERASTUNER_ORACLE_PORT=PORT extf worker STUDY_DIR. Received: {' '.join(args) or '(none)'}")
    study_dir = Path(args[0].removeprefix("study_dir=")).resolve()
    missing = [v for v in (ENV_ID, ENV_IP) if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"extf worker needs the environment variables {', '.join(missing)} (the tuner id of this "
                          f"worker and the chief oracle's host, printed by `extf tune tuner.workers=N`; "
                          f"{ENV_PORT} too unless the chief runs on this machine). "
                          f"Received: {', '.join(f'{v}={os.environ.get(v)!r}' for v in (ENV_ID, ENV_IP, ENV_PORT))}")
    if "chief" in os.environ[ENV_ID]:
        raise ConfigError(f"{ENV_ID} must not contain 'chief' (keras-tuner reserves it for the oracle). "
                          f"Received: {ENV_ID}={os.environ[ENV_ID]!r}")
    token = os.environ.get(ENV_TOKEN) or None
    info = read_worker_file(study_dir, token, wait=READY_TIMEOUT if token else 0.0)  # local: written before spawn
    if os.environ.get("EXTF_PARENT_PID", "").isdigit():
        watch_parent(int(os.environ["EXTF_PARENT_PID"]))
    RemoteWorker(OmegaConf.create(info["config"]), study_dir, os.environ[ENV_ID],
                 lambda: read_worker_file(study_dir, info.get("token"), wait=READY_TIMEOUT, ready=True)).run()
    return 0


def _set_threads() -> None:
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS")
    if threads:
        limit_threads(int(threads))


def limit_threads(threads: int) -> None:
    """TensorFlow's intra/inter-op thread pools of this process (before its first op; later it is too late)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime is already initialized: TensorFlow keeps its pools
        pass


def stopping_too(code: int, grace: float = 3.0) -> bool:
    """Whether this (chief) process is being interrupted as well. A worker killed by SIGINT or SIGTERM may have got
    it from the terminal together with the chief, whose signal handler runs a moment later: wait that moment."""
    from extf.errors import interrupted

    if code not in (-2, -15, 130, 143):
        return interrupted()
    deadline = time.monotonic() + grace
    while not interrupted() and time.monotonic() < deadline:
        time.sleep(0.05)
    return interrupted()
