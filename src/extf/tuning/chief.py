"""The distributed chief (tuner.workers=N): the `extf tune` process serves keras-tuner's chief oracle (gRPC), runs
its own share of the trials as worker0 and supervises N-1 local `extf worker` processes (remote ones may join);
afterwards the best trial over every worker becomes the study's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.errors import ExtfError, raise_if_interrupted
from extf.objective import Objective
from extf.tracking.process import ENV_FD as TRACKING_FD
from extf.tuning.context import CHIEF_WORKER
from extf.tuning.distributed import (
    ENV_ID,
    ENV_IP,
    ENV_PORT,
    ENV_TOKEN,
    KILLED_CODES,
    START_TIMEOUT,
    WORKER_FILE,
    announce_study,
    budget_deadline,
    default_threads,
    limit_threads,
    requeue_orphans,
    serve_oracle,
    stopping_too,
    worker_ids,
    write_worker_file,
)
from extf.tuning.state import StudyState, collect_best


class Chief:
    """Serves the oracle and runs trials as worker0 beside the local workers; `state` holds worker0's own best."""

    def __init__(self, cfg: DictConfig, study_dir: Path, out=sys.stdout, tracking_process=None):
        self.cfg = cfg
        self.study_dir = study_dir
        self.out = out
        self.token = f"{os.getpid()}-{time.time_ns()}"  # names this process's worker.json
        self.workers = LocalWorkers(cfg, study_dir, self.token, out, tracking_process)
        self.state = StudyState(study_dir, best_dir=study_dir / "workers" / CHIEF_WORKER / "best")

    def start(self) -> None:
        """Start the N-1 worker processes now, so their start-up (TensorFlow, the data, the tracking store) overlaps
        the chief's; they wait for the oracle, which the chief serves once its tuner exists."""
        announce_study(self.study_dir, OmegaConf.to_container(self.cfg, resolve=True), self.token)
        self.workers.start()

    def attach(self, tracker, parent_id: str | None) -> None:
        """The study's parent run exists: a killed worker's trial run is ended KILLED when it restarts."""
        self.workers.attach(tracker, parent_id)

    def stop(self) -> None:
        """The workers stop (their trial runs end KILLED); a worker started from now on finds no study to join."""
        self.workers.stop()
        (self.study_dir / WORKER_FILE).unlink(missing_ok=True)

    def search(self, tuner, objective: Objective, parent_run_id: str | None, init_weights: Path | None) -> None:
        """Serve the oracle, run trials here as worker0 while the workers run theirs, wait for them all, then take
        the best trial over all of them into the study's best/."""
        t = self.cfg.tuner
        oracle = tuner.oracle
        oracle.verbose = 0
        tuner.save()  # like keras-tuner's own chief: the next run of this study reloads the oracle from it
        requeue_orphans(oracle, set(worker_ids(t.workers)))
        server, port = serve_oracle(oracle, t.oracle_host, t.oracle_port, asked=self.workers.asked)
        write_worker_file(self.study_dir, OmegaConf.to_container(self.cfg, resolve=True), self.token, parent_run_id,
                          init_weights, port, budget_deadline(oracle))
        print(f"Distributed search: chief oracle on {t.oracle_host}:{port}; {t.workers} local worker(s) (this "
              f"process is worker0) with {self.workers.threads} TensorFlow thread(s) each; logs in "
              f"{self.workers.logs}. Other machines join with: KERASTUNER_TUNER_ID=<id> KERASTUNER_ORACLE_IP=<this "
              f"host> KERASTUNER_ORACLE_PORT={port} extf worker {self.study_dir}", file=self.out, flush=True)
        try:
            self.state.best_dir.mkdir(parents=True, exist_ok=True)
            limit_threads(self.workers.threads)
            self.workers.wait_started(START_TIMEOUT)
            if self.workers.error is not None:  # a worker failed while starting
                raise self.workers.error
            tuner.search(verbose=0)
            self.workers.join(oracle)
        except ExtfError:
            self._raise_if_no_trial_finished()
            raise
        finally:
            self.workers.stop()
            server.stop(grace=2)
        collect_best(self.study_dir, objective, tuner.ctx.objectives)

    def _raise_if_no_trial_finished(self) -> None:
        """A worker's error after every trial so far failed: the first failure says more."""
        trials = list(self.state.logged_trials().values())
        failed = [t for t in trials if t["status"] == "FAILED"]
        if failed and not any(t["status"] == "FINISHED" for t in trials):
            raise ExtfError(f"No trial finished; the first failure: {failed[0].get('reason')}. See the FAILED "
                            f"trial runs' extf.failure_reason tags. Received: {len(failed)} failed trial(s)") from None


class LocalWorkers:
    """N-1 `extf worker` processes beside the chief (worker0), restarted when a signal kills them; a thread watches
    them while the chief runs its own trials."""

    def __init__(self, cfg: DictConfig, study_dir: Path, token: str, out, tracking_process=None):
        t = cfg.tuner
        self.cfg, self.study_dir, self.out, self.token = cfg, study_dir, out, token
        self.host = "127.0.0.1" if t.oracle_host in ("0.0.0.0", "::", "") else t.oracle_host
        self.threads = t.threads_per_worker or default_threads(t.workers)
        self.restarts_left = t.max_worker_restarts
        self.procs: dict[str, subprocess.Popen] = {}
        self.asked: set[str] = set()  # the tuner ids that have asked the chief's oracle for a trial (its gRPC thread)
        self.logs = study_dir / "workers"
        self.error: BaseException | None = None
        self.stopping = False
        self.watcher = None
        self.tracking_process = tracking_process  # the chief's (extf.tracking.process): the workers log through it
        self.tracker = None  # attach(): the study's tracker and parent run, once they exist
        self.parent_id: str | None = None

    def attach(self, tracker, parent_id: str | None) -> None:
        """The study's parent run exists: a killed worker's trial run can be ended KILLED from now on."""
        self.tracker, self.parent_id = tracker, parent_id

    def start(self) -> None:
        for wid in worker_ids(self.cfg.tuner.workers)[1:]:
            self._spawn(wid)
        self.watcher = threading.Thread(target=self._watch, name="extf-workers", daemon=True)
        self.watcher.start()

    def wait_started(self, timeout: float) -> None:
        """Until every local worker has asked the oracle for its first trial (it has loaded TensorFlow, the data and
        the tracking store), has ended, or has failed, for at most `timeout` s. The chief, whose start-up is already
        done, begins its own first trial with theirs: otherwise it takes the first trials alone, and a short study
        ends before a worker has run any."""
        deadline = time.monotonic() + timeout
        while self.error is None and not self.stopping and time.monotonic() < deadline:
            if all(wid in self.asked or proc.poll() is not None for wid, proc in list(self.procs.items())):
                return
            raise_if_interrupted()  # a Ctrl-C that Python dropped elsewhere still stops the study here
            time.sleep(0.05)

    def _watch(self) -> None:
        try:
            self.wait()
        except BaseException as e:  # handed to the main thread by join()
            self.error = e

    def join(self, oracle) -> None:
        """After the chief's own trials: wait for the worker processes, then for trials of remote workers."""
        while self.watcher.is_alive():
            self.watcher.join(0.5)
        if self.error is not None:
            raise self.error
        if oracle.ongoing_trials:  # a remote worker still running a trial
            print(f"Waiting for {len(oracle.ongoing_trials)} trial(s) on other workers: "
                  f"{', '.join(sorted(oracle.ongoing_trials))}", file=self.out, flush=True)
            while oracle.ongoing_trials:
                time.sleep(1)

    def _spawn(self, wid: str) -> None:
        (self.logs / wid).mkdir(parents=True, exist_ok=True)
        threads = str(self.threads)
        # no port: the worker reads it from worker.json once the chief serves the oracle (started before that)
        env = {k: v for k, v in os.environ.items() if k != ENV_PORT}
        env.update({ENV_ID: wid, ENV_IP: self.host, ENV_TOKEN: self.token, "TF_NUM_INTRAOP_THREADS": threads,
                    "TF_NUM_INTEROP_THREADS": threads, "OMP_NUM_THREADS": threads})
        sock = self.tracking_process.attach() if self.tracking_process is not None else None
        if sock is not None:
            env[TRACKING_FD] = str(sock.fileno())
        with open(self.logs / wid / "stderr.log", "ab") as log:
            env["EXTF_PARENT_PID"] = str(os.getpid())
            try:
                self.procs[wid] = subprocess.Popen(
                    [sys.executable, "-m", "extf.cli", "worker", str(self.study_dir)], env=env, stderr=log,
                    pass_fds=[sock.fileno()] if sock is not None else [])
            finally:
                if sock is not None:
                    sock.close()

    def wait(self) -> None:
        """Until every worker process has finished (the oracle told it to stop); restart the ones killed."""
        while self.procs and not self.stopping:
            for wid, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[wid]
                if code == 0:
                    continue
                if (code < 0 or code in KILLED_CODES) and stopping_too(code):
                    return  # a Ctrl-C reached the whole process group: the chief stops the study, nothing restarts
                if (code < 0 or code in KILLED_CODES) and self.restarts_left > 0:
                    self.restarts_left -= 1
                    parent = self.parent_id  # None: killed before the study's run started
                    ended = parent and self.tracker.end_stale_trials(
                        parent, worker=wid, reason=f"{wid} was killed (exit code {code}); the trial runs again")
                    print(f"[{wid}] stopped by a signal (exit code {code}); restarting it, its trial runs again"
                          + (f" ({ended} trial run marked KILLED)" if ended else ""), file=self.out, flush=True)
                    self._spawn(wid)
                    continue
                raise ExtfError(self._failure(wid, code))
            time.sleep(0.2)

    def _failure(self, wid: str, code: int) -> str:
        lines = (self.logs / wid / "stderr.log").read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [ln for ln in lines if ln.startswith("extf worker: ")]
        detail = errors[-1].split(": ", 1)[1].removeprefix("error: ") if errors else (lines[-1] if lines else "no output")
        if code < 0 or code in KILLED_CODES:
            return (f"worker {wid} was killed more often than tuner.max_worker_restarts allows. Expected workers to "
                    f"finish; see {self.logs / wid / 'stderr.log'}. Received: exit code {code}")
        return f"{detail} (in worker {wid}; its log: {self.logs / wid / 'stderr.log'})"

    def stop(self) -> None:
        """Ask the remaining workers to stop (their trial runs end KILLED), then make sure they are gone."""
        self.stopping = True
        if self.watcher is not None:
            self.watcher.join(5)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
