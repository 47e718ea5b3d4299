"""A study read back from MLflow for its report: the parent run, its objective, its trials and its plots."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extf.config.objectives import MEASURES
from extf.errors import ConfigError
from extf.objective import Objective
from extf.tracking.runs import natural_key, objective_of, ranked_trial_runs

IMAGES = ("learning_curves.png", "plots")  # artifacts inlined in the report (plots/: every *.png)


@dataclass
class Trial:
    trial_id: str
    status: str
    value: float | None  # the objective (best epoch); None for failed / unfinished trials
    params: dict[str, str]  # the trial's hyperparameters
    epochs: int | None
    reason: str  # why it failed, if it did
    pruned_at: str = ""  # the epoch pruning stopped it at (extf.pruned_epoch), if it did
    measures: dict | None = None  # params, latency_ms (extf.config.objectives.MEASURES) when logged


@dataclass
class StudyReport:
    run: Any  # mlflow.entities.Run of the study's parent run
    experiment: str
    objective: Objective
    trials: list[Trial]  # best first; failed, killed and unfinished trials last
    images: list[tuple[str, bytes]]  # (artifact path, PNG bytes)

    @property
    def hp_names(self) -> list[str]:
        names: list[str] = []
        for t in sorted(self.trials, key=lambda t: natural_key(t.trial_id)):
            names += [k for k in t.params if k not in names]
        return names


def study_run(client, run_id: str):
    """The parent run of a study, or one clear error for an unknown id, a trial or a run extf did not log."""
    from extf.tracking.logged import get_run

    run = get_run(client, run_id)
    tags = run.data.tags
    if tags.get("extf.kind") == "trial" or "mlflow.parentRunId" in tags:
        parent = tags.get("mlflow.parentRunId", "?")
        raise ConfigError(f"Run {run_id} is a trial, not a study; a report covers a whole study, logged on its parent "
                          f"run. Use `extf report run_id={parent}`. Received: run_id={run_id!r}")
    if tags.get("extf.kind") != "study":
        raise ConfigError(f"Run {run_id} is not an extf study (it has no tag extf.kind=study). Pick a study's run id "
                          f"from `extf runs`. Received: run_id={run_id!r}")
    return run


def latest_tune_study(tracking_uri: str) -> str:
    """The run id of the most recent FINISHED `extf tune` study."""
    from extf.tracking.runs import list_studies

    for row in list_studies(tracking_uri):  # newest first
        if row["status"] == "FINISHED" and row["command"] == "tune":
            return row["run_id"]
    raise ConfigError(f"No finished `extf tune` study in {tracking_uri} to report on. Run `extf tune` (or `make "
                      f"tune`) first, or pass run_id=ID of a study listed by `extf runs`. Received: no run_id")


def trials_of(client, run, objective: Objective) -> list[Trial]:
    """The study's trial child runs, best first, then the failed / killed / unfinished ones by trial id."""
    trials = []
    for r in ranked_trial_runs(client, run, objective):
        epochs = r.data.metrics.get("epochs_trained")
        trials.append(Trial(trial_id=r.data.tags.get("extf.trial_id", r.info.run_name or "?"), status=r.info.status,
                            value=r.data.metrics.get(f"{objective.name}_best") if r.info.status == "FINISHED"
                            else None, params=dict(r.data.params), epochs=None if epochs is None else int(epochs),
                            reason=r.data.tags.get("extf.failure_reason", ""),
                            pruned_at=r.data.tags.get("extf.pruned_epoch", ""),
                            measures={k: r.data.metrics[k] for k in MEASURES if k in r.data.metrics}))
    return trials


def images_of(client, run_id: str) -> list[tuple[str, bytes]]:
    """learning_curves.png and plots/*.png of the run, as bytes."""
    paths = []
    for entry in client.list_artifacts(run_id):
        if entry.path == IMAGES[0]:
            paths.append(entry.path)
        elif entry.path == IMAGES[1] and entry.is_dir:
            paths += sorted(e.path for e in client.list_artifacts(run_id, entry.path) if e.path.endswith(".png"))
    images = []
    with tempfile.TemporaryDirectory(prefix="extf-report-") as tmp:
        for path in paths:
            images.append((path, Path(client.download_artifacts(run_id, path, tmp)).read_bytes()))
    return images


def collect(client, run_id: str) -> StudyReport:
    run = study_run(client, run_id)
    objective = objective_of(run)
    return StudyReport(run=run, experiment=client.get_experiment(run.info.experiment_id).name, objective=objective,
                       trials=trials_of(client, run, objective), images=images_of(client, run_id))
