"""The study: one path for `extf train` (a space of one point) and `extf tune`.

load data once -> search (keras-tuner, train + validation only, one MLflow child run per trial) -> rebuild the best
trial's model with its weights -> evaluate ONCE on test -> log everything on the study's parent run.

The pieces: extf.tuning.prepare (data, objective, tracker), .state (study.json, trials.jsonl, best/), .tuner (the
trial lifecycle on keras-tuner's hooks), .chief (tuner.workers=N), .final (test and artifacts).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError, ExtfError
from extf.tuning.chief import Chief
from extf.tuning.context import CHIEF_WORKER, TrialContext
from extf.tuning.distributed import requeue_orphans
from extf.tuning.final import FinalTest
from extf.tuning.prepare import (
    SearchInputs,
    apply_determinism,
    check_search,
    check_with_tensorflow,
    fatal_cause,
    open_tracker,
    start_tracking_process,
)
from extf.tuning.recorder import TrialRecorder
from extf.tuning.state import STATE_FILE, StudyState
from extf.tuning.warm_start import drop_warm_starts

# keys that do not change what a study computes: re-running with other values resumes the same study
NOT_IDENTITY = ("paths", "tracking", "command", "run_id", "input", "output", "unsafe_load", "allow_targets")
NOT_IDENTITY_DOTTED = ("tuner.max_trials", "tuner.overwrite", "trainer.verbosity", "tuner.workers", "tuner.oracle_host",
                       "tuner.oracle_port", "tuner.threads_per_worker", "tuner.max_worker_restarts")
DIGEST_CACHE = ".data-digests"  # in outputs/studies/: the data files' digests, so a next start reads the changed ones


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
    data = data_digest(cfg.dataset, Path(cfg.paths.root_dir) / "outputs" / "studies" / DIGEST_CACHE)
    if data is None:
        return config_hash, config_hash, None
    return hashlib.sha256(f"{config_hash}:{data}".encode()).hexdigest()[:10], config_hash, data


class Study:
    """Runs a study from a validated config; `run()` returns a summary dict (test metrics, run ids, paths)."""

    def __init__(self, cfg: DictConfig, out=sys.stdout):
        self.cfg = cfg
        self.out = out
        self.study_dir = Path(cfg.paths.study_dir or cfg.paths.output_dir).resolve()
        self.name = cfg.experiment_name
        self.state = StudyState(self.study_dir)
        self.started = time.time()

    def run(self) -> dict:
        """Load the data, start (or continue) the parent run, search, test the best trial once."""
        cfg = self.cfg
        inputs = check_search(cfg)  # no TensorFlow, no tracking process yet: a config or data error costs neither
        init_weights = self._init_weights()  # an unknown run too (MLflow, which this process imports for it anyway)
        process = start_tracking_process(cfg, self.name)  # before TensorFlow's import, which it overlaps
        try:
            check_with_tensorflow(cfg, inputs)
            self.state.prepare(bool(cfg.tuner.overwrite))
            chief = Chief(cfg, self.study_dir, self.out, process) if cfg.tuner.workers else None
            try:
                if chief is not None:
                    chief.start()  # the workers' start-up overlaps the chief's
                tracker = open_tracker(cfg, self.name, process)
                saved = self.state.load()
                self.state.restore(inputs.objective)
                parent = tracker.start_study(self.name, saved.get("parent_run_id"),
                                             *self._parent_params_and_tags(inputs.splits.meta))
                if chief is not None:
                    chief.attach(tracker, parent)
                with parent_run_ends(tracker, parent):
                    record = self._begin(tracker, parent, saved, inputs.splits)
                    summary = self._search_and_test(inputs, tracker, parent, record, init_weights, chief)
                    tracker.flush()  # an error of a pipelined call (extf.tracking.process) fails the study here
                    return summary
            finally:
                if chief is not None:
                    chief.stop()
        finally:
            if process is not None:
                process.close()

    def _begin(self, tracker, parent: str | None, saved: dict, splits) -> dict:
        """Say whether the study resumes (its interrupted trial runs end KILLED) or is new; write study.json; log
        the dataset on the parent run. Returns study.json's content."""
        from extf.data.lineage import dataset_inputs

        _, config_hash, data = study_identity(self.cfg)
        if parent is not None and parent == saved.get("parent_run_id"):
            ended = tracker.end_stale_trials(parent)
            print(f"Resuming study {self.name} in {self.study_dir}: {len(self.state.trials)} trial(s) recorded"
                  + (f", {ended} interrupted trial run(s) marked KILLED" if ended else "")
                  + (f"; same data ({self._data_name()} sha256 {data[:12]})" if data else ""), file=self.out)
        elif data and self.cfg.command == "tune":
            self._say_if_the_data_changed(config_hash, data)
        record = {**saved, "parent_run_id": parent, "name": self.name, "config_hash": config_hash,
                  "data_digest": data}
        self.state.save(record)
        tracker.log_dataset_inputs(parent, dataset_inputs(self.cfg.dataset, splits, data))
        return record

    def _search_and_test(self, inputs: SearchInputs, tracker, parent: str | None, record: dict,
                         init_weights: Path | None, chief: Chief | None) -> dict:
        """The search, then the best trial tested once; a finished study run again is not tested again."""
        new_trials, first_error = self._search(inputs, tracker, parent, init_weights, chief)
        best = self.state.best_trial
        if best is None:
            if first_error is not None:
                raise _as_user_error(first_error) from None
            _refuse_if_none_feasible(self.state.trials, inputs.objectives)
            raise ExtfError("No trial finished, so there is no best model to test. See the trial runs' "
                            "extf.failure_reason tags in MLflow. Received: 0 finished trials")
        if new_trials == 0 and record.get("test_metrics") and record.get("tested_trial", best["trial_id"]) == \
                best["trial_id"]:  # nothing new was searched, so the test split is not used again
            print("The study had already finished: no new trials, the recorded test metrics stand.", file=self.out)
            test_metrics = record["test_metrics"]
        else:
            final = FinalTest(self.cfg, inputs.splits, inputs.objective, self.state, tracker, parent,
                              say=lambda text: print(text, file=self.out, flush=True), objectives=inputs.objectives)
            test_metrics = final.run()
            record.update(baseline=final.baseline_line)
            record.update(test_metrics=test_metrics, tested_trial=best["trial_id"])
            self.state.save(record)
        return {"parent_run_id": parent, "test_metrics": test_metrics, "best": best, "baseline": record.get("baseline"),
                "trials": self.state.ranked(inputs.objective), "study_dir": str(self.study_dir),
                "objective": inputs.objective.name}

    def _search(self, inputs: SearchInputs, tracker, parent: str | None, init_weights: Path | None,
                chief: Chief | None) -> tuple[int, BaseException | None]:
        """keras-tuner's search here (or as the chief's worker0); returns the number of trials it ran and the
        first failure of this process's trials."""
        import keras_tuner as kt

        from extf.tuning.tuner import make_tuner

        cfg, objective = self.cfg, inputs.objective
        apply_determinism(cfg)
        trials_before = self.state.trial_lines()
        state = chief.state if chief is not None else self.state  # worker0 keeps its own best until collected
        if chief is not None:
            state.restore(objective)
        recorder = TrialRecorder(cfg, state, objective, self.out, CHIEF_WORKER if chief else None, self.started,
                                 inputs.objectives)
        ctx = TrialContext(cfg, inputs.splits, objective, tracker, recorder.record, recorder.say, parent,
                           recorder.worker_id, init_weights, inputs.folds, inputs.objectives, started=self.started)
        tuner = make_tuner(ctx, inputs.space, self.study_dir / "tuner", overwrite=bool(cfg.tuner.overwrite))
        try:
            if chief is not None:
                chief.search(tuner, objective, parent, init_weights)
            else:
                requeue_orphans(tuner.oracle, {tuner.tuner_id})
                tuner.search(verbose=0)
        except kt.errors.FatalError as e:
            raise fatal_cause(e) from None
        except RuntimeError as e:  # keras-tuner gives up after too many consecutive failed trials
            if self.state.best_trial is None and state.best_trial is None and recorder.first_error is not None:
                raise _as_user_error(recorder.first_error) from None
            raise ExtfError(f"The search stopped: {e} See the FAILED trial runs' extf.failure_reason tags.") from None
        drop_warm_starts(self.study_dir / "tuner")
        self._say_why_the_search_stopped(tuner.oracle, tracker, parent, recorder)
        if chief is not None:  # the best over every worker is now in best/
            self.state.restore(objective)
        return self.state.trial_lines() - trials_before, recorder.first_error

    def _say_why_the_search_stopped(self, oracle, tracker, parent: str | None, recorder: TrialRecorder) -> None:
        """The parent run's `extf.stop_reason`: time_budget, max_trials, or space_exhausted (fewer trials)."""
        t = self.cfg.tuner
        if getattr(oracle, "budget_spent", lambda: False)():
            reason = "time_budget"
            recorder.say(f"time budget tuner.time_budget={t.time_budget} spent after {len(oracle.trials)} trial(s): "
                         f"no new trial started")
        else:
            reason = "max_trials" if len(oracle.trials) >= t.max_trials else "space_exhausted"
        if parent:
            tracker.set_tags(parent, {"extf.stop_reason": reason})

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

    def _init_weights(self) -> Path | None:
        """init_from=RUN_ID|MODEL_URI: the logged model's weights, which every trial starts from."""
        cfg = self.cfg
        if not cfg.init_from:
            return None
        from extf.tracking.logged import fetch

        if not cfg.tracking.enabled:
            raise ConfigError("init_from reads a logged model from MLflow, but tracking is off. Use "
                              f"tracking=mlflow. Received: init_from={cfg.init_from!r}, tracking=none")
        return fetch(cfg.tracking.tracking_uri, cfg.init_from, key="init_from").weights_path

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


@contextmanager
def parent_run_ends(tracker, parent: str | None):
    """The parent run always ends with the study's status (FINISHED, KILLED or FAILED with its reason), and so do
    its trial runs, wherever the stop came."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException as e:
        _unless_server_lost(tracker.set_tags, parent, {"extf.failure_reason": _reason(e)})
        raise
    finally:
        if status != "FINISHED":  # no trial run may outlive its study as RUNNING
            _unless_server_lost(tracker.end_stale_trials, parent, status, reason=f"the study ended {status}")
        _unless_server_lost(tracker.end_run, parent, status)


def _unless_server_lost(fn, *args, **kwargs) -> None:
    """Cleanup calls after a failure: if the tracking server is gone, the error that stops the study says so (and
    the next run ends the runs left RUNNING)."""
    from extf.errors import TrackingUnavailable

    try:
        fn(*args, **kwargs)
    except TrackingUnavailable:
        pass


def _refuse_if_none_feasible(trials: list[dict], objectives) -> None:
    """Trials finished but none meets tuner.constraints: nothing may be tested; say how close they came."""
    finished = [t for t in trials if t.get("status") == "FINISHED"]
    if not finished or not objectives.constraints:
        return
    closest = []
    for c in objectives.constraints:
        values = [float(t[c.name]) for t in finished if t.get(c.name) is not None]
        if values:
            closest.append(f"{c.name} from {min(values):.4g} to {max(values):.4g}")
    raise ConfigError(f"None of the {len(finished)} finished trials meets tuner.constraints "
                      f"({', '.join(str(c) for c in objectives.constraints)}), so no model is tested. The trials had "
                      f"{'; '.join(closest) or 'no value of the constrained measures'}. Loosen the constraints or "
                      f"narrow the search space (e.g. fewer units), then run again: the study resumes with its trials."
                      f" Received: tuner.constraints={[str(c) for c in objectives.constraints]}")


def _as_user_error(e: BaseException) -> ExtfError:
    if isinstance(e, ExtfError):
        return e
    return ExtfError(f"Training failed: {e}. If the loss diverged, lower optimizer.learning_rate; otherwise check "
                     f"that the model and the data fit together. Received: {type(e).__name__}")


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if not isinstance(e, ExtfError):
        text = f"{type(e).__name__}: {text}\n{traceback.format_exc(limit=5)}"
    return text[:5000]
