"""A study logged in MLflow, fetched back: its resolved config, dataset description, model and weights."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.errors import ConfigError


@dataclass
class LoggedStudy:
    run_id: str
    config: DictConfig
    dataset: dict  # name, task, modality, input_shape, class_names, threshold, feature_names
    model_path: Path  # the .keras file
    weights_path: Path
    metrics: dict[str, float]

    def load_model(self):
        from extf.models.io import load_model

        return load_model(self.model_path)


def get_run(client, run_id: str, key: str = "run_id"):
    """The run, or one clear error naming the id and where to find valid ones."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ConfigError(_no_run(run_id, client.tracking_uri, key)) from None


def _no_run(run_id: str, tracking_uri: str, key: str, why: str = "") -> str:
    return (f"No MLflow run with id {run_id!r} in {tracking_uri}{why}. List the studies and their run ids with "
            f"`extf runs` (a run on an MLflow server: `extf runs tracking_uri=http://…`, tracking=mlflow_server for "
            f"extf evaluate/predict/train). Received: {key}={run_id!r}")


def fetch(tracking_uri: str, run_id: str | None, key: str = "run_id") -> LoggedStudy:
    """Download what `extf evaluate / predict / train init_from=` need from a study's parent run."""
    if not run_id:
        raise ConfigError(f"`{key}` is required: the id of a study's parent run (see `extf runs`). "
                          f"Received: {key}={run_id!r}")
    db = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else None
    if db is not None and not Path(db).is_file():  # told before MLflow's import, which would create an empty store
        raise ConfigError(_no_run(run_id, tracking_uri, key, why=": there is no MLflow store there yet"))
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    run = get_run(client, run_id, key)
    if run.data.tags.get("extf.kind") == "trial":
        raise ConfigError(f"Run {run_id} is a trial; the model is logged on its study's parent run "
                          f"{run.data.tags.get('mlflow.parentRunId')}. Received: {key}={run_id!r}")
    local = Path(tempfile.mkdtemp(prefix="extf-run-"))
    files = {}
    try:
        for path in ("config.yaml", "dataset.json", "model_files/model.keras", "model_files/model.weights.h5"):
            files[path] = Path(client.download_artifacts(run_id, path, str(local)))
    except (MlflowException, OSError):
        raise ConfigError(f"Run {run_id} has no logged extf model (config.yaml, dataset.json and model_files/ are "
                          f"logged when a study finishes). Pick a FINISHED study from `extf runs`. "
                          f"Received: {key}={run_id!r} (status {run.info.status})") from None
    return LoggedStudy(
        run_id=run_id,
        config=OmegaConf.load(files["config.yaml"]),
        dataset=json.loads(files["dataset.json"].read_text(encoding="utf-8")),
        model_path=files["model_files/model.keras"],
        weights_path=files["model_files/model.weights.h5"],
        metrics=dict(run.data.metrics),
    )


def load_logged_model(logged: LoggedStudy, allow_targets=(), unsafe: bool = False):
    """The study's .keras model, with safe_mode unless `unsafe` (the user's unsafe_load=true). A model built by the
    project's own function: its module is imported first (when this project's allow_targets allow it), so the
    custom layers it registers with keras.saving.register_keras_serializable load."""
    from extf.config.instantiate import resolve
    from extf.config.validate import allowed_prefixes
    from extf.console import import_tensorflow
    from extf.models.io import load_model

    import_tensorflow()
    target = logged.config.model.get("_target_") if "model" in logged.config else None
    if target and str(target).startswith(allowed_prefixes(allow_targets)):
        resolve(str(target), "model._target_ (of the logged study)", tuple(allow_targets))
    return load_model(logged.model_path, unsafe=unsafe, source=f"run {logged.run_id}")
