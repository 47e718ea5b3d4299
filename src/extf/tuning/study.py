"""The study: one path for `extf train` (a space of one point) and `extf tune`.

load data once -> search (keras-tuner, train + validation only, one MLflow child run per trial) -> rebuild the best
trial's model with its weights -> evaluate ONCE on test -> log everything on the study's parent run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError, ExtfError

STATE_FILE = "study.json"
TRIALS_FILE = "trials.jsonl"


@dataclass
class Objective:
    name: str
    direction: str  # min | max

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a < b if self.direction == "min" else a > b)

    def rank(self, value: float, val_loss: float | None = None) -> tuple[float, float]:
        """Sort key, best first: the objective, then (ties are common for accuracies on small validation splits)
        the lower minimum validation loss; a trial without one comes after those with one."""
        return (value if self.direction == "min" else -value, float("inf") if val_loss is None else val_loss)


def resolve_objective(cfg: DictConfig, meta) -> Objective:
    """`auto` picks val_accuracy (classification), val_mean_iou (segmentation: pixel accuracy is mostly background)
    or val_loss (regression, reconstruction); the objective is always a val_ metric."""
    name = cfg.tuner.objective.name
    if name == "auto":
        name = {"regression": "val_loss", "reconstruction": "val_loss",
                "segmentation": "val_mean_iou"}.get(meta.task, "val_accuracy")
    if not name.startswith("val_"):
        raise ConfigError(f"tuner.objective.name must be a validation metric (val_*): the tuner scores on the "
                          f"validation split only. Received: tuner.objective.name={name!r}")
    direction = cfg.tuner.objective.direction
    if direction == "auto":
        direction = "min" if any(k in name for k in ("loss", "error", "mae", "mse")) else "max"
    return Objective(name, direction)


# keys that do not change what a study computes: re-running with other values resumes the same study
NOT_IDENTITY = ("paths", "tracking", "command", "run_id", "input", "output", "unsafe_load", "allow_targets")
NOT_IDENTITY_DOTTED = ("tuner.max_trials", "tuner.overwrite", "trainer.verbosity", "tuner.workers", "tuner.oracle_host",
                       "tuner.oracle_port", "tuner.threads_per_worker", "tuner.max_worker_restarts")


def study_identity(cfg: DictConfig) -> tuple[str, str, str | None]:
    """(study hash, config hash, data digest): the config hash covers what the study computes; a dataset read from
    a file or folder adds the SHA-256 of its content (extf.data.lineage), so a changed file is a new study.
    Without a data file the study hash is the config hash."""
    import hashlib

    from extf.data.lineage import data_digest

    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        plain.pop(key, None)
    for dotted in NOT_IDENTITY_DOTTED:
        section, key = dotted.split(".")
        plain.get(section, {}).pop(key, None)
    config_hash = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:10]
    data = data_digest(cfg.dataset)
    if data is None:
        return config_hash, config_hash, None
    return hashlib.sha256(f"{config_hash}:{data}".encode()).hexdigest()[:10], config_hash, data


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


class Study:
    """Runs a study from a validated config; `run()` returns a summary dict (test metrics, run ids, paths)."""

    def __init__(self, cfg: DictConfig, out=sys.stdout):
        self.cfg = cfg
        self.out = out
        self.study_dir = Path(cfg.paths.study_dir or cfg.paths.output_dir).resolve()
        self.name = cfg.experiment_name
        self.best_value: float | None = None
        self.best_trial: dict | None = None
        self.best_hp: dict = {}
        self.trials: list[dict] = []
        self.first_error: BaseException | None = None
        self.new_trials = 0
        self.init_weights: Path | None = None
        self.started = time.time()
        self.best_dir = self.study_dir / "best"
        self.worker_id: str | None = None  # set in a worker process of a distributed search
        self.parent_id: str | None = None
        self.local_workers = None  # the worker processes of a distributed search, started early by run()
        self.token = f"{os.getpid()}-{time.time_ns()}"  # names this process's worker.json
        self.tracking_process = None  # MLflow's own process (extf.tracking.process), started by run() / work()

    # ------------------------------------------------------------------ main path
    def _prepare_search(self):
        """Everything a search needs before the first trial: the space, the data (loaded once), the objective."""
        from extf.console import import_tensorflow
        from extf.data import load_dataset
        from extf.models import check_fits_data, prepare_splits
        from extf.models.augmentation import check_augmentation
        from extf.tuning.space import parse_space
        from extf.tuning.trial import check_stateful_batches

        cfg = self.cfg
        import_tensorflow()  # the first import, after the tracking process has started (it overlaps it)
        space = parse_space(cfg.search_space, cfg)
        self.splits = prepare_splits(cfg.model, load_dataset(cfg.dataset, cfg.seed, cfg.allow_targets))
        meta = self.splits.meta
        check_fits_data(cfg.model, meta)
        check_stateful_batches(cfg, self.splits)
        check_augmentation(cfg.augmentation, meta.modality, meta.input_shape, meta.task)
        self.objective = resolve_objective(cfg, meta)
        return space

    def start_tracking(self) -> None:
        """Tracking on: start the MLflow tracking process now, before TensorFlow's import, which its start-up
        (importing MLflow, opening or creating the store) then overlaps on the other core; see extf.tracking.process.
        A study that stops before `_open_tracker` (a data error, say) may leave a new, empty store behind."""
        from extf.tracking.process import TrackerProcess

        tcfg = self.cfg.tracking
        if self.tracking_process is None and tcfg.enabled and tcfg.tracking_uri:
            self.tracking_process = TrackerProcess(OmegaConf.to_container(tcfg, resolve=True), self.name)

    def _stop_tracking(self) -> None:
        if self.tracking_process is not None:
            self.tracking_process.close()

    def work(self, worker_id: str, wait_ready) -> None:
        """A worker of a distributed search: load everything, wait until the chief serves its oracle (`wait_ready`
        returns the complete worker.json), then run the trials the oracle hands out until it says stop."""
        self.start_tracking()
        try:
            self._work(worker_id, wait_ready)
        finally:
            self._stop_tracking()

    def _work(self, worker_id: str, wait_ready) -> None:
        import keras_tuner as kt

        from extf.tuning.distributed import ENV_PORT
        from extf.tuning.tuner import make_tuner

        space = self._prepare_search()
        self.worker_id = worker_id
        self.best_dir = self.study_dir / "workers" / worker_id / "best"
        self.best_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = _open_tracker(self.cfg, self.name, self.tracking_process)
        self.tracker.worker_id = worker_id
        self._apply_determinism()
        info = wait_ready()
        os.environ.setdefault(ENV_PORT, str(info["oracle_port"]))  # keras-tuner's client reads it from here
        self.init_weights = Path(info["init_weights"]) if info.get("init_weights") else None
        self.tracker.parent_id = info["parent_run_id"]
        self._restore_progress()
        tuner = make_tuner(self.cfg, space, self.objective, self, directory=self.study_dir / "tuner", overwrite=False)
        try:
            tuner.search(verbose=0)
        except kt.errors.FatalError as e:
            raise _fatal_cause(e) from None

    def run(self) -> dict:
        cfg = self.cfg
        self.start_tracking()
        try:
            space = self._prepare_search()
            self._prepare_dir()
            try:
                self._start_workers()
                return self._run(space, self.splits.meta)
            finally:
                if self.local_workers is not None:
                    self.local_workers.stop()
                if cfg.tuner.workers:  # a worker started from now on is told there is no study to join
                    (self.study_dir / "worker.json").unlink(missing_ok=True)
        finally:
            self._stop_tracking()

    def _start_workers(self) -> None:
        """tuner.workers=N: start the N-1 worker processes now, so their start-up (TensorFlow, the data, the tracking
        store) overlaps the chief's; they wait for the oracle, which the chief serves once its tuner exists."""
        if not self.cfg.tuner.workers:
            return
        from extf.tuning import distributed as dist

        dist.announce_study(self.study_dir, OmegaConf.to_container(self.cfg, resolve=True), self.token)
        self.local_workers = dist.LocalWorkers(self, self.token, self.out)
        self.local_workers.start()

    def _run(self, space, meta) -> dict:
        """Open the tracker, start (or continue) the parent run, search and test; the parent run always ends with
        the study's status (FINISHED, KILLED or FAILED with its reason), and so do its trial runs."""
        # before init_from's lookup, which may create the store
        self.tracker = _open_tracker(self.cfg, self.name, self.tracking_process)
        self._fetch_init_weights()
        state = self._load_state()
        self._restore_progress()
        parent = self.parent_id = self.tracker.start_study(self.name, state.get("parent_run_id"),
                                                           *self._parent_params_and_tags(meta))
        status = "FAILED"
        try:
            _, config_hash, data = study_identity(self.cfg)
            if parent is not None and parent == state.get("parent_run_id"):
                ended = self.tracker.end_stale_trials(parent)
                print(f"Resuming study {self.name} in {self.study_dir}: {len(self.trials)} trial(s) recorded"
                      + (f", {ended} interrupted trial run(s) marked KILLED" if ended else "")
                      + (f"; same data ({self._data_name()} sha256 {data[:12]})" if data else ""), file=self.out)
            elif data and self.cfg.command == "tune":
                self._say_if_the_data_changed(config_hash, data)
            self.state = {**state, "parent_run_id": parent, "name": self.name, "config_hash": config_hash,
                          "data_digest": data}
            write_json_atomic(self.study_dir / STATE_FILE, self.state)
            from extf.data.lineage import dataset_inputs

            self.tracker.log_dataset_inputs(parent, dataset_inputs(self.cfg.dataset, self.splits, data))
            summary = self._search_and_test(space)
            status = "FINISHED"
            return summary
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException as e:
            _unless_server_lost(self.tracker.set_tags, parent, {"extf.failure_reason": _reason(e)})
            raise
        finally:
            if status != "FINISHED":  # no trial run may outlive its study as RUNNING, wherever the stop came
                _unless_server_lost(self.tracker.end_stale_trials, parent, status, reason=f"the study ended {status}")
            _unless_server_lost(self.tracker.end_run, parent, status)

    def _data_name(self) -> str:
        return Path(str(self.cfg.dataset.get("path") or self.cfg.dataset.name)).name

    def _say_if_the_data_changed(self, config_hash: str, data: str) -> None:
        """A new study whose config matches an earlier study's but whose data file changed: say why it does not
        resume that one (its trials were scored on other data)."""
        for path in sorted(self.study_dir.parent.glob(f"{self.name}-*/{STATE_FILE}")):
            if path.parent == self.study_dir:
                continue
            try:
                other = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if other.get("config_hash") == config_hash and other.get("data_digest") not in (None, data):
                print(f"New study {self.name} in {self.study_dir}: {self._data_name()} changed since the study in "
                      f"{path.parent} (content sha256 {other['data_digest'][:12]} -> {data[:12]}), whose trials were "
                      f"scored on the old data, so that study is not resumed; it stays as it was.", file=self.out)
                return

    def _fetch_init_weights(self) -> None:
        """init_from=RUN_ID|MODEL_URI: the logged model's weights, which every trial starts from."""
        cfg = self.cfg
        if not cfg.init_from:
            return
        from extf.tracking.logged import fetch

        if not cfg.tracking.enabled:
            raise ConfigError("init_from reads a logged model from MLflow, but tracking is off. Use "
                              f"tracking=mlflow. Received: init_from={cfg.init_from!r}, tracking=none")
        self.init_weights = fetch(cfg.tracking.tracking_uri, cfg.init_from, key="init_from").weights_path

    def _parent_params_and_tags(self, meta) -> tuple[dict, dict]:
        """The parent run's params (the resolved config, flattened) and tags (what ran, with provenance)."""
        from extf.tracking import flatten, provenance

        cfg = self.cfg
        params = flatten(OmegaConf.to_container(cfg, resolve=True))
        params = {k: v for k, v in params.items()
                  if not k.startswith(("paths.", "search_space.")) and k not in ("run_id", "input", "output")}
        tags = {"dataset": meta.name, "model": cfg.model.name, "tuner": cfg.tuner.name, "task": meta.task,
                "command": cfg.command, **({"init_from": cfg.init_from} if cfg.init_from else {})}
        if data := study_identity(cfg)[2]:  # the content of the dataset's file or folder
            tags["data_digest"] = data
        code_dir = Path(__file__).resolve().parents[3]
        tags.update({"git_commit": provenance.git_commit(code_dir), **provenance.versions()})
        return params, tags

    def _search_and_test(self, space) -> dict:
        import keras

        from extf.tuning.tuner import drop_warm_starts, make_tuner

        cfg = self.cfg
        self._apply_determinism()
        import keras_tuner as kt

        tuner = make_tuner(cfg, space, self.objective, self, directory=self.study_dir / "tuner",
                           overwrite=bool(cfg.tuner.overwrite))
        try:
            if cfg.tuner.workers:
                self._distributed_search(tuner)
            else:
                from extf.tuning.distributed import requeue_orphans

                requeue_orphans(tuner.oracle, {tuner.tuner_id})
                tuner.search(verbose=0)
        except kt.errors.FatalError as e:
            raise _fatal_cause(e) from None
        except RuntimeError as e:  # keras-tuner gives up after too many consecutive failed trials
            if self.best_trial is None and self.first_error is not None:
                raise _as_user_error(self.first_error) from None
            raise ExtfError(f"The search stopped: {e} See the FAILED trial runs' extf.failure_reason tags.") from None
        drop_warm_starts(self.study_dir / "tuner")
        if self.best_trial is None:
            if self.first_error is not None:
                raise _as_user_error(self.first_error) from None
            raise ExtfError("No trial finished, so there is no best model to test. See the trial runs' "
                            "extf.failure_reason tags in MLflow. Received: 0 finished trials")
        if (self.new_trials == 0 and self.state.get("test_metrics")
                and self.state.get("tested_trial", self.best_trial["trial_id"]) == self.best_trial["trial_id"]):
            # a finished study run again: nothing new was searched, so the test split is not used again
            print("The study had already finished: no new trials, the recorded test metrics stand.", file=self.out)
            test_metrics = self.state["test_metrics"]
        else:
            keras.backend.clear_session()
            model = self._final_model()
            test_metrics = self._evaluate_test(model)
            self._log_study(model, test_metrics)
            self.state["test_metrics"], self.state["tested_trial"] = test_metrics, self.best_trial["trial_id"]
            write_json_atomic(self.study_dir / STATE_FILE, self.state)
        return {"parent_run_id": self.parent_id, "test_metrics": test_metrics, "best": self.best_trial,
                "trials": _ranked(self.trials, self.objective),
                "study_dir": str(self.study_dir), "objective": self.objective.name}

    def _distributed_search(self, tuner) -> None:
        """Serve the oracle, run trials here as `worker0` while N-1 worker processes run theirs, then take the best
        trial over all of them."""
        from extf.tuning import distributed as dist

        cfg = self.cfg
        log = self.study_dir / TRIALS_FILE
        lines_before = len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0
        oracle = tuner.oracle
        oracle.verbose = 0
        tuner.save()  # like keras-tuner's own chief: the next run of this study reloads the oracle from it
        dist.requeue_orphans(oracle, set(dist.worker_ids(cfg.tuner.workers)))
        server, port = dist.serve_oracle(oracle, cfg.tuner.oracle_host, cfg.tuner.oracle_port)
        workers = self.local_workers
        dist.write_worker_file(self.study_dir, OmegaConf.to_container(cfg, resolve=True), self.token, self.parent_id,
                               self.init_weights, port)
        print(f"Distributed search: chief oracle on {cfg.tuner.oracle_host}:{port}; {cfg.tuner.workers} local "
              f"worker(s) (this process is worker0) with {workers.threads} TensorFlow thread(s) each; logs in "
              f"{workers.logs}. Other machines join with: KERASTUNER_TUNER_ID=<id> KERASTUNER_ORACLE_IP=<this host> "
              f"KERASTUNER_ORACLE_PORT={port} extf worker {self.study_dir}", file=self.out, flush=True)
        try:
            if workers.error is not None:  # a worker failed while starting
                raise workers.error
            self._search_as_worker(tuner, dist.CHIEF_WORKER, workers.threads)
            workers.join(oracle)
        except ExtfError:
            self._restore_progress()
            finished = [t for t in self.trials if t["status"] == "FINISHED"]
            failed = [t for t in self.trials if t["status"] == "FAILED"]
            if not finished and failed:
                raise ExtfError(f"No trial finished; the first failure: {failed[0].get('reason')}. See the FAILED "
                                f"trial runs' extf.failure_reason tags. Received: {len(failed)} failed trial(s)") \
                    from None
            raise
        finally:
            workers.stop()
            server.stop(grace=2)
        self.worker_id, self.tracker.worker_id, self.best_dir = None, None, self.study_dir / "best"
        dist.collect_best(self.study_dir, self.objective)
        self._restore_progress()
        self.new_trials = len(log.read_text(encoding="utf-8").splitlines()) - lines_before if log.exists() else 0

    def _search_as_worker(self, tuner, worker_id: str, threads: int) -> None:
        """The chief's own share of the trials: keras-tuner's search loop on the oracle it serves (thread-safe)."""
        from extf.tuning.distributed import limit_threads

        self.worker_id = self.tracker.worker_id = tuner.tuner_id = worker_id
        self.best_dir = self.study_dir / "workers" / worker_id / "best"
        self.best_dir.mkdir(parents=True, exist_ok=True)
        limit_threads(threads)
        tuner.search(verbose=0)

    # ------------------------------------------------------------------ pieces
    def _prepare_dir(self) -> None:
        try:
            self.study_dir.mkdir(parents=True, exist_ok=True)
            probe = self.study_dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"Cannot write to the output directory {str(self.study_dir)!r} ({e.strerror}). "
                              f"Expected a writable directory; choose another with hydra.run.dir=PATH or "
                              f"paths.root_dir=PATH. Received: {str(self.study_dir)!r}") from None
        if self.cfg.tuner.overwrite:
            for name in ("tuner", "best", "workers", "artifacts", STATE_FILE, TRIALS_FILE, "worker.json"):
                target = self.study_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        self.best_dir.mkdir(exist_ok=True)

    def _load_state(self) -> dict:
        path = self.study_dir / STATE_FILE
        if path.exists():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                return {}
        return {}

    def _logged_trials(self) -> dict[str, dict]:
        """trials.jsonl (every worker appends to it), the last row of each trial; a line cut by a crash is skipped."""
        by_id: dict[str, dict] = {}
        log = self.study_dir / TRIALS_FILE
        for line in (log.read_text(encoding="utf-8").splitlines() if log.exists() else []):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_id[row["trial_id"]] = row
        return by_id

    def _restore_progress(self) -> None:
        """On resume: the trials recorded so far and the best one (its weights are in best/)."""
        if (self.study_dir / TRIALS_FILE).exists():
            self.trials = list(self._logged_trials().values())
        best = self.best_dir / "trial.json"
        if best.exists() and (self.best_dir / "model.weights.h5").exists():
            saved = json.loads(best.read_text(encoding="utf-8"))
            self.best_trial = saved["trial"]
            self.best_hp = saved["hyperparameters"]
            self.best_value = self.best_trial.get(self.objective.name)

    def _apply_determinism(self) -> None:
        if self.cfg.determinism:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()

    def record_trial(self, trial_id: str, hp_values: dict, status: str, value: float | None, epochs: int,
                     seconds: float, model=None, history: dict | None = None, reason: str | None = None) -> None:
        """Called by the tuner after each trial: keep the best weights, print one progress line."""
        from extf.tuning.trial import val_loss_min

        self.new_trials += 1
        row = {"trial_id": trial_id, "status": status, self.objective.name: value, "epochs": epochs,
               "seconds": round(seconds, 2), **hp_values}
        if reason:
            row["reason"] = reason
        if (loss_min := val_loss_min(history, self.objective.name)) is not None:  # the tie-break (rank)
            row["val_loss_min"] = loss_min
        self.trials = [t for t in self.trials if t["trial_id"] != trial_id] + [row]
        with open(self.study_dir / TRIALS_FILE, "a", encoding="utf-8") as f:  # one write: workers append too
            f.write(json.dumps(row, default=str) + "\n")
        n_done, best_shown = len(self.trials), None
        if self.worker_id:  # other workers' trials count too, and so does their best
            rows = self._logged_trials()
            n_done = len(rows)
            for r in rows.values():
                v = r.get(self.objective.name)
                if r.get("status") == "FINISHED" and v is not None and (best_shown is None
                                                                        or self.objective.better(v, best_shown)):
                    best_shown = v
        if status == "FINISHED" and value is not None and self._improves(value, row.get("val_loss_min")):
            self.best_value = value
            self.best_trial = row
            self.best_hp = dict(hp_values)
            best_dir = self.best_dir
            tmp = best_dir / "model.weights.h5.tmp.weights.h5"
            model.save_weights(tmp)
            os.replace(tmp, best_dir / "model.weights.h5")
            write_json_atomic(best_dir / "trial.json", {"trial": row, "history": history,
                                                         "hyperparameters": hp_values})
        n_max = self.cfg.tuner.max_trials
        order = {k: i for i, k in enumerate(self.cfg.search_space)}  # workers get the values in another order
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(hp_values.items(), key=lambda kv: order.get(kv[0], 1e9))
                         if not k.startswith("tuner/"))
        value_text = f"{self.objective.name}={_fmt(value)}" if value is not None else f"FAILED ({reason})"
        self.say(f"[trial {n_done}/{n_max}] {shown or '(fixed config)'}  {value_text}  "
                 f"best={_fmt(self.best_value if best_shown is None else best_shown)}  epochs={epochs}  "
                 f"{time.time() - self.started:.1f}s")

    def say(self, text: str) -> None:
        """A line on the study's output (a trial line, a note); in a worker it starts with the worker's id."""
        print(f"[{self.worker_id}] {text}" if self.worker_id else text, file=self.out, flush=True)

    def _improves(self, value: float, val_loss: float | None) -> bool:
        """Ahead of the best trial so far in the leaderboard's order (Objective.rank)."""
        return self.best_value is None or self.objective.rank(value, val_loss) < self.objective.rank(
            self.best_value, (self.best_trial or {}).get("val_loss_min"))

    def _final_model(self):
        """The best trial's architecture with its saved weights (no retraining)."""
        from extf.models import build_model
        from extf.tuning.space import apply_hyperparameters

        self.best_cfg = apply_hyperparameters(self.cfg, self.best_hp)
        model = build_model(self.best_cfg, self.splits.meta)
        with warnings.catch_warnings():  # the fresh optimizer has no slots yet; only the layer weights matter here
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(self.study_dir / "best" / "model.weights.h5")
        if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
            # saved with its optimizer's variables, so that keras.models.load_model / mlflow.keras.load_model of the
            # logged model do not warn "Skipping variable loading for optimizer" (2 saved variables vs 14 built)
            model.optimizer.build(model.trainable_variables)
        return model

    def _evaluate_test(self, model) -> dict[str, float]:
        """The only place the test split is used: once, after the search."""
        from extf.evaluation.evaluate import evaluate_model

        cfg = self.best_cfg
        metrics, self.test_outputs = evaluate_model(model, self.splits, "test", self.splits.meta,
                                                    cfg.evaluation.threshold, cfg.trainer.batch_size,
                                                    stateful=bool(cfg.model.get("stateful")))
        return {f"test_{k}": v for k, v in metrics.items()}

    def _log_study(self, model, test_metrics: dict) -> None:
        from extf.evaluation.plots import learning_curves
        from extf.models.io import save_model_files

        best = self.best_trial
        art = self.study_dir / "artifacts"
        if art.exists():
            shutil.rmtree(art)
        art.mkdir()
        (art / "config.yaml").write_text(OmegaConf.to_yaml(self.cfg, resolve=True), encoding="utf-8")
        from extf.tracking.provenance import freeze

        (art / "requirements-freeze.txt").write_text(freeze(), encoding="utf-8")
        (art / "search_space.yaml").write_text(OmegaConf.to_yaml(self.cfg.search_space), encoding="utf-8")
        _write_leaderboard(self.trials, self.objective, art / "leaderboard.csv")
        history = json.loads((self.study_dir / "best" / "trial.json").read_text())["history"]
        _write_history(history, art / "history.csv")
        best_epoch = None
        if history and self.objective.name in history:
            from extf.tuning.trial import best_value

            _, best_epoch = best_value(history, self.objective.name, self.objective.direction)
        learning_curves(history, art / "learning_curves.png", self.objective.name, best_epoch)
        model_files = save_model_files(model, art / "model_files")
        if self.cfg.evaluation.plots:
            from extf.evaluation.evaluate import write_plots

            write_plots(self.splits.meta, self.splits.test.y, self.test_outputs, art / "plots",
                        self.cfg.evaluation.threshold, x=self.splits.test.inputs(4))  # the overlay shows 4
        meta = self.splits.meta
        table = table_spec(meta, self.cfg.evaluation.threshold)
        write_json_atomic(art / "dataset.json", {
            "name": meta.name, "task": meta.task, "modality": meta.modality, "input_shape": list(meta.input_shape),
            "class_names": list(meta.class_names), "threshold": self.cfg.evaluation.threshold,
            "feature_names": meta.extra.get("feature_names"), **({"table": table} if table else {})})
        metrics = {**test_metrics, f"best_{self.objective.name}": self.best_value,
                   "finished_trials": sum(t["status"] == "FINISHED" for t in self.trials)}
        self.tracker.log_metrics(self.parent_id, metrics)
        self.tracker.set_tags(self.parent_id, {
            "best_trial_id": best["trial_id"],
            "mlflow.note.content": f"best trial {best['trial_id']}: {self.objective.name}={_fmt(self.best_value)}; "
                                   + ", ".join(f"{k}={_fmt(v)}" for k, v in test_metrics.items()),
        })
        # tags, not params: a study extended later (a larger tuner.max_trials) may find another best trial
        self.tracker.replace_tags(self.parent_id, "best.", {f"best.{k}": v for k, v in self.best_hp.items()})
        self.tracker.log_artifacts(self.parent_id, art)
        if self.cfg.tracking.log_model:
            import keras

            n = self.best_cfg.trainer.batch_size if self.best_cfg.model.get("stateful") else 5
            if table:  # the raw rows the logged model takes, and the predictions table it answers with
                from extf.data.rows import TableModel
                from extf.data.tables import head_frame

                example = head_frame(self.splits.train, n, table)
                prediction = TableModel(model, table).predict(example)
            else:
                example = self.splits.train.inputs(n)
                prediction = model.predict(example, verbose=0, batch_size=len(example))
            self.tracker.log_keras_model(self.parent_id, model_files["keras"], example, prediction,
                                         keras.__version__, keras.backend.backend(), table=table)
        self.model_dir = art / "model_files"


def table_spec(meta, threshold: float) -> dict | None:
    """What the logged model of a table needs to take raw rows (extf.data.rows), or None for other data."""
    if "table" not in meta.extra:
        return None
    return {**meta.extra["table"], "task": meta.task, "class_names": list(meta.class_names),
            "threshold": float(threshold)}


def _open_tracker(cfg, experiment_name: str, process=None):
    """The study's tracker, opened once TensorFlow is imported (MLflow itself runs in `process` when given)."""
    import keras_tuner  # noqa: F401 - TensorFlow first

    from extf.tracking import make_tracker

    return process.open() if process is not None else make_tracker(cfg, experiment_name)


def _fatal_cause(e: BaseException) -> ExtfError:
    """The user error inside keras-tuner's FatalError (raised by run_trial to stop the search)."""
    cause = e.args[0] if e.args else e
    return cause if isinstance(cause, ExtfError) else ExtfError(f"The search stopped: {cause}")


def _unless_server_lost(fn, *args, **kwargs) -> None:
    """Cleanup calls after a failure: if the tracking server is gone, the error that stops the study says so (and
    the next run ends the runs left RUNNING)."""
    from extf.errors import TrackingUnavailable

    try:
        fn(*args, **kwargs)
    except TrackingUnavailable:
        pass


def _ranked(trials: list[dict], objective: Objective) -> list[dict]:
    """Finished trials best first, then the failed ones."""
    done = [t for t in trials if t.get(objective.name) is not None]
    done.sort(key=lambda t: objective.rank(t[objective.name], t.get("val_loss_min")))
    return done + [t for t in trials if t.get(objective.name) is None]


def _write_leaderboard(trials: list[dict], objective: Objective, path: Path) -> None:
    import pandas as pd

    pd.DataFrame(_ranked(trials, objective)).to_csv(path, index=False)


def _write_history(history: dict, path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(history)
    df.insert(0, "epoch", range(len(df)))
    df.to_csv(path, index=False)


def _as_user_error(e: BaseException) -> ExtfError:
    if isinstance(e, ExtfError):
        return e
    return ExtfError(f"Training failed: {e}. If the loss diverged, lower optimizer.learning_rate; otherwise check "
                     f"that the model and the data fit together. Received: {type(e).__name__}")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if not isinstance(e, ExtfError):
        text = f"{type(e).__name__}: {text}\n{traceback.format_exc(limit=5)}"
    return text[:5000]
