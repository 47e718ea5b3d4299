"""The tracker interface: what the study, the tuner and the workers call to record a study and its trials.

Three implementations: `NullTracker` (tracking=none: records nothing), `MlflowTracker` (extf.tracking.mlflow_tracker,
MLflow in this process) and `TrackerProcess` (extf.tracking.process: the same calls carried out by MlflowTracker in
the tracking process). Calls are stateless: each carries the run ids it needs (a trial's parent run, its worker), so
one tracker serves a study, its trials and a worker alike, and nothing is set on a tracker from outside.

Run ids are `str | None` (None: nothing is tracked, and every call given None does nothing). Calls that return
nothing may be carried out later (the tracking process pipelines them): their errors are raised by a later call that
returns something, by `flush`, or by the tracking process's `close`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# (step, {metric: value}) rows: a trial's per-epoch history
History = list[tuple[int, dict[str, float]]]
STALE_REASON = ("the process running this trial stopped before it finished (killed or crashed); the trial is run "
                "again")


@runtime_checkable
class Tracker(Protocol):
    """Records studies (parent runs) and their trials (nested child runs)."""

    def start_study(self, name: str, run_id: str | None, params: dict, tags: dict) -> str | None:
        """Start the study's parent run, or continue `run_id` when the study resumes; its run id."""

    def start_trial(self, parent_id: str | None, trial_id: str, params: dict,
                    worker_id: str | None = None) -> str | None:
        """Start a trial's run under the study's run `parent_id` (by worker `worker_id` of a distributed search)."""

    def end_trial(self, run_id: str | None, status: str, metrics: dict[str, float] | None = None,
                  history: History | None = None, reason: str | None = None) -> None:
        """End a trial's run with its summary metrics and the history not logged yet, in one write."""

    def end_stale_trials(self, parent_id: str, status: str = "KILLED", reason: str = STALE_REASON,
                         worker: str | None = None) -> int:
        """End the trial runs of `parent_id` (of one worker, if given) still RUNNING; how many there were."""

    def end_run(self, run_id: str | None, status: str, reason: str | None = None) -> None:
        """End a run FINISHED, FAILED or KILLED, with `reason` as its failure-reason tag."""

    def log_params(self, run_id: str | None, params: dict) -> None:
        """Log params (dotted names), which cannot change once logged."""

    def log_metrics(self, run_id: str | None, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at one step."""

    def log_metric_history(self, run_id: str | None, rows: History) -> None:
        """Log many (step, metrics) rows in as few writes as the store allows."""

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        """Set tags."""

    def replace_tags(self, run_id: str | None, prefix: str, tags: dict[str, Any]) -> None:
        """Set `tags` and delete the run's other tags whose key starts with `prefix`."""

    def log_artifacts(self, run_id: str | None, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy a directory's files into the run's artifacts."""

    def log_keras_model(self, run_id: str | None, keras_file: str | Path, x_example, prediction,
                        keras_version: str, keras_backend: str, table: dict | None = None) -> None:
        """Log a saved `.keras` file as an MLflow Keras model with signature and input example."""

    def log_dataset_inputs(self, run_id: str | None, inputs: list[dict]) -> None:
        """Log the data the run saw as MLflow dataset inputs, one per split."""

    def flush(self) -> None:
        """Wait until every call made so far is carried out; raise the first error not raised yet."""


def tracker_methods() -> list[str]:
    """The names of the Tracker protocol's methods (what the tracking process dispatches)."""
    return sorted(name for name, value in vars(Tracker).items() if callable(value) and not name.startswith("_"))


class NullTracker:
    """Tracking switched off (`tracking=none`): the Tracker protocol, recording nothing."""

    def start_study(self, name: str, run_id: str | None, params: dict, tags: dict) -> str | None:
        """No parent run: None."""
        return None

    def start_trial(self, parent_id: str | None, trial_id: str, params: dict,
                    worker_id: str | None = None) -> str | None:
        """No trial run: None."""
        return None

    def end_trial(self, run_id: str | None, status: str, metrics: dict[str, float] | None = None,
                  history: History | None = None, reason: str | None = None) -> None:
        """Nothing to end."""

    def end_stale_trials(self, parent_id: str, status: str = "KILLED", reason: str = STALE_REASON,
                         worker: str | None = None) -> int:
        """No runs: 0."""
        return 0

    def end_run(self, run_id: str | None, status: str, reason: str | None = None) -> None:
        """Nothing to end."""

    def log_params(self, run_id: str | None, params: dict) -> None:
        """Nothing recorded."""

    def log_metrics(self, run_id: str | None, metrics: dict[str, float], step: int | None = None) -> None:
        """Nothing recorded."""

    def log_metric_history(self, run_id: str | None, rows: History) -> None:
        """Nothing recorded."""

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        """Nothing recorded."""

    def replace_tags(self, run_id: str | None, prefix: str, tags: dict[str, Any]) -> None:
        """Nothing recorded."""

    def log_artifacts(self, run_id: str | None, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Nothing recorded."""

    def log_keras_model(self, run_id: str | None, keras_file: str | Path, x_example, prediction,
                        keras_version: str, keras_backend: str, table: dict | None = None) -> None:
        """Nothing recorded."""

    def log_dataset_inputs(self, run_id: str | None, inputs: list[dict]) -> None:
        """Nothing recorded."""

    def flush(self) -> None:
        """Nothing pending."""
