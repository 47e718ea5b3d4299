"""MLflow tracking: one parent run per study, one nested child run per trial, batched metric logging.

Everything goes through an explicit `MlflowClient` bound to the configured tracking URI (never MLflow's implicit
default store), and experiments are created with an explicit artifact location so artifacts never scatter.
A run this module starts always ends FINISHED, FAILED or KILLED.
"""

from __future__ import annotations

import os
import time
from contextlib import closing as contextlib_closing
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from extf.errors import ConfigError, TrackingUnavailable
from extf.tracking import keras_flavor
from extf.tracking.protocol import STALE_REASON, History, NullTracker, Tracker

STUDY_TAG = "extf.study"
TRIAL_TAG = "extf.trial_id"
KIND_TAG = "extf.kind"
REASON_TAG = "extf.failure_reason"
WORKER_TAG = "extf.worker"


# what MLflow's REST client says once its own retries (tracking.request_retries) could not reach the server
CONNECTION_LOST = ("Max retries exceeded", "Failed to establish a new connection", "Connection refused",
                   "Connection aborted", "RemoteDisconnected", "Read timed out", "timed out")
_server = {"uri": None, "lost": None}  # once the server is gone, later calls fail at once instead of retrying again


def _retry(fn, *args, attempts: int = 5, **kwargs):
    """SQLite stores refuse concurrent writers with "database is locked": wait and try again. A server that does
    not answer after MLflow's own retries stops the study with TrackingUnavailable."""
    if _server["lost"]:
        raise TrackingUnavailable(_server["lost"])
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # MlflowException wraps the OperationalError
            _raise_if_connection_lost(e)
            if "database is locked" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)


def _raise_if_connection_lost(e: Exception) -> None:
    text = str(e)
    if _server["uri"] and any(sign in text for sign in CONNECTION_LOST):
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
        _server["lost"] = (
            f"Lost the MLflow server at {_server['uri']}: it did not answer after {retries} retries. Everything "
            f"logged before stays on the server, and the study's state is kept in outputs/studies/: start the server "
            f"again (`make server`) and re-run the same command to resume the study. Received: "
            f"{text.splitlines()[0][:300]}")
        raise TrackingUnavailable(_server["lost"]) from None


class MlflowTracker:
    """The Tracker protocol (extf.tracking.protocol) on an MLflow store, in this process."""

    def __init__(self, tracking_uri: str, artifact_root: str | None, experiment_name: str):
        import mlflow
        from mlflow import MlflowClient

        db = Path(tracking_uri[len("sqlite:///"):]) if tracking_uri.startswith("sqlite:///") else None
        if db is not None:
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"Cannot create the MLflow store directory {str(db.parent)!r} ({e.strerror}). "
                                  f"Expected a writable directory; set paths.mlruns_dir or tracking.tracking_uri. "
                                  f"Received: tracking.tracking_uri={tracking_uri!r}") from None
        self.tracking_uri = tracking_uri
        if tracking_uri.startswith(("http://", "https://")):
            _check_server(tracking_uri)
        mlflow.set_tracking_uri(tracking_uri)  # for mlflow.keras.log_model, which uses the fluent API
        # parallel sweep jobs would race to create the SQLite schema and the experiment: one at a time
        with _file_lock(db.with_name(db.name + ".lock") if db is not None else None):
            if db is not None and not db.exists():
                _create_store(db)
            self.client = MlflowClient(tracking_uri)
            self.experiment_id = self._experiment(experiment_name, artifact_root)

    def _experiment(self, name: str, artifact_root: str | None) -> str:
        exp = _retry(self.client.get_experiment_by_name, name)
        if exp is None:
            location = None
            if artifact_root:
                root = Path(artifact_root).resolve() / name
                root.mkdir(parents=True, exist_ok=True)
                location = root.as_uri()
            try:
                return _retry(self.client.create_experiment, name, artifact_location=location)
            except TrackingUnavailable:
                raise
            except Exception:  # another process (a parallel sweep job) created it first
                exp = _retry(self.client.get_experiment_by_name, name)
                if exp is None:
                    raise
                return exp.experiment_id
        if exp.lifecycle_stage == "deleted":
            raise ConfigError(f"MLflow experiment {name!r} was deleted. Restore it in the MLflow UI or choose "
                              f"another name with experiment_name=NAME. Received: experiment_name={name!r}")
        return exp.experiment_id

    # ------------------------------------------------------------------ runs
    def start_study(self, name: str, run_id: str | None, params: dict, tags: dict) -> str | None:
        """Start the study's parent run, or continue `run_id` when the study resumes."""
        if run_id is not None:
            run = self._existing_run(run_id)
            if run is not None:
                if run.info.status != "RUNNING":
                    _retry(self.client.update_run, run_id, status="RUNNING")
                return run_id
        run = _retry(self.client.create_run, self.experiment_id, run_name=name,
                     tags={KIND_TAG: "study", STUDY_TAG: name, **{k: str(v) for k, v in tags.items()}})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def _existing_run(self, run_id: str):
        from mlflow.exceptions import MlflowException

        try:
            run = _retry(self.client.get_run, run_id)
        except MlflowException:
            return None  # the store was cleaned: the study gets a new parent run
        return run if run.info.lifecycle_stage == "active" else None

    def end_stale_trials(self, parent_id: str, status: str = "KILLED", reason: str = STALE_REASON,
                         worker: str | None = None) -> int:
        """Trial runs of the study (of one worker, if given) still RUNNING (a process that died, or an interrupt
        between two MLflow calls): end them."""
        query = f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'"
        if worker:
            query += f" and tags.`{WORKER_TAG}` = '{worker}'"
        runs = _retry(self.client.search_runs, [self.experiment_id], filter_string=query)
        for run in runs:
            self.end_run(run.info.run_id, status, reason=reason)
        return len(runs)

    def start_trial(self, parent_id: str | None, trial_id: str, params: dict,
                    worker_id: str | None = None) -> str | None:
        """A RUNNING child run of `parent_id` with the trial's params (shown while it trains, kept if it is killed)."""
        if parent_id is None:
            return None
        run = _retry(self.client.create_run, self.experiment_id, run_name=f"trial-{trial_id}",
                     tags={"mlflow.parentRunId": parent_id, KIND_TAG: "trial", TRIAL_TAG: trial_id,
                           **({WORKER_TAG: worker_id} if worker_id else {})})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def end_trial(self, run_id: str | None, status: str, metrics: dict[str, float] | None = None,
                  history: History | None = None, reason: str | None = None) -> None:
        """The trial's summary metrics (step 0), its history rows and its failure reason in one log_batch (more only
        past the store's limits), then the run's end."""
        from mlflow.entities import RunTag

        if run_id is None:
            return
        rows = [*(history or []), *([(0, metrics)] if metrics else [])]
        tags = [RunTag(REASON_TAG, reason[:5000])] if reason else []
        _log_batch(self.client, run_id, metrics=_metrics(rows), tags=tags)
        _retry(self.client.set_terminated, run_id, status=status)

    def end_run(self, run_id: str | None, status: str, reason: str | None = None) -> None:
        """End a run FINISHED, FAILED or KILLED, with `reason` as its failure-reason tag."""
        if run_id is None:
            return
        if reason:
            self.set_tags(run_id, {REASON_TAG: reason[:5000]})
        _retry(self.client.set_terminated, run_id, status=status)

    def flush(self) -> None:
        """Every call is carried out when it returns: nothing pending."""

    # ------------------------------------------------------------------ logging
    def log_params(self, run_id: str | None, params: dict) -> None:
        """Log params (dotted names), which cannot change once logged."""
        from mlflow.entities import Param

        if run_id is not None:
            _log_batch(self.client, run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])

    def log_metrics(self, run_id: str | None, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics at one step."""
        self.log_metric_history(run_id, [(step or 0, metrics)])

    def log_metric_history(self, run_id: str | None, rows: History) -> None:
        """Log many (step, metrics) rows in as few requests as the store allows (1000 metrics per batch)."""
        if run_id is not None:
            _log_batch(self.client, run_id, metrics=_metrics(rows))

    def set_tags(self, run_id: str | None, tags: dict[str, Any]) -> None:
        """Set tags."""
        from mlflow.entities import RunTag

        if run_id is not None and tags:
            _log_batch(self.client, run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def replace_tags(self, run_id: str | None, prefix: str, tags: dict[str, Any]) -> None:
        """Set `tags` (every key starts with `prefix`) and delete the run's other `prefix` tags: values that change
        when a study grows (its best trial's hyperparameters; MLflow params cannot change once logged)."""
        if run_id is None:
            return
        stale = [k for k in _retry(self.client.get_run, run_id).data.tags if k.startswith(prefix) and k not in tags]
        for key in stale:
            _retry(self.client.delete_tag, run_id, key)
        self.set_tags(run_id, tags)

    def log_artifacts(self, run_id: str | None, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy a directory's files into the run's artifacts."""
        if run_id is not None:
            _retry(self.client.log_artifacts, run_id, str(local_dir), artifact_path, attempts=1)

    def log_dataset_inputs(self, run_id: str | None, inputs: list[dict]) -> None:
        """The data the run saw, as MLflow dataset inputs (what mlflow.log_input logs; the UI's Dataset column):
        one per split (`extf.data.lineage.dataset_inputs`), its context tag train / validation / test. Logging the
        same ones again (a resumed study) adds nothing."""
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.types import ColSpec, Schema

        if run_id is None or not inputs:
            return
        datasets = []
        for item in inputs:
            schema = None
            if item.get("columns"):
                colspec = Schema([ColSpec(kind, name) for name, kind in item["columns"]]).to_dict()
                schema = json.dumps({"mlflow_colspec": colspec})
            profile = json.dumps({"num_rows": item["rows"], "data_digest": item["data_digest"],
                                  "input_shape": item.get("shape")})
            dataset = Dataset(name=item["name"], digest=item["digest"],
                              source_type="local" if "uri" in item["source"] else "code",
                              source=json.dumps(item["source"]), schema=schema, profile=profile)
            datasets.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", item["context"])]))
        _retry(self.client.log_inputs, run_id, datasets=datasets)

    def log_keras_model(self, run_id: str | None, keras_file: str | Path, x_example, prediction,
                        keras_version: str, keras_backend: str, table: dict | None = None) -> None:
        """Log the model saved in `keras_file` as an MLflow Keras model (`runs:/<id>/model`; mlflow.keras and
        mlflow.pyfunc load it), with the signature of (x_example -> prediction) and x_example as input example.
        Keras itself is not needed here (see keras_flavor); the caller predicted the example. `table`: the model
        takes a table's raw rows (extf.data.rows): its python_function flavor takes them, with a signature that
        names every column and its type."""
        import mlflow
        from mlflow.models import Model

        if run_id is None:
            return
        # the logged model (MLflow 3's LoggedModel) belongs to the active experiment (fluent API), not the run's
        _retry(mlflow.set_experiment, experiment_id=self.experiment_id)
        # validate_serving_input=False: MLflow would load the model back with Keras to predict the example again;
        # the caller's prediction of it already did
        with _no_requirement_check():
            _retry(Model.log, artifact_path=None, name="model", flavor=keras_flavor, flavor_name="mlflow.keras",
                   run_id=run_id, keras_file=str(keras_file), keras_version=keras_version, keras_backend=keras_backend,
                   signature=_signature(x_example, prediction, table), input_example=x_example, table=table,
                   pip_requirements=_pip_requirements(), validate_serving_input=False, attempts=1)


def _metrics(rows: History) -> list:
    """MLflow Metric entities of (step, {name: value}) rows, all stamped now; None values left out."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, int(step)) for step, metrics in rows for k, v in metrics.items() if v is not None]


# the store's limits per log_batch: 1000 metrics, 100 params, 100 tags, 1000 entities in all
_BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}


def _log_batch(client, run_id: str, **items: list) -> None:
    """One log_batch of metrics, params and tags; several, filled in turn, only past the store's limits."""
    pending = {kind: list(values) for kind, values in items.items() if values}
    while pending:
        batch, room = {}, 1000
        for kind in list(pending):
            take = min(_BATCH_LIMITS[kind], room)
            batch[kind], pending[kind] = pending[kind][:take], pending[kind][take:]
            room -= len(batch[kind])
            if not pending[kind]:
                del pending[kind]
        _retry(client.log_batch, run_id, **batch)


def _signature(x_example, prediction, table: dict | None):
    """(x -> prediction); for a table, every feature column by name: numbers as double (a missing cell is NaN,
    whatever the column's type in the file), categories as string."""
    import warnings

    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    with warnings.catch_warnings():  # "integer columns cannot represent missing values": class_index, an output
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        inferred = infer_signature(x_example, prediction)
    if table is None:
        return inferred
    inputs = Schema([ColSpec("double" if c["kind"] == "numeric" else "string", c["name"], required=True)
                     for c in table["columns"]])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def _create_store(db: Path) -> None:
    """Create the SQLite schema in a temporary file and rename it into place: a process killed during MLflow's
    table creation and migrations must not leave a half-made store that every later run trips over."""
    from mlflow import MlflowClient

    for stale in db.parent.glob(f".{db.name}.*.tmp*"):  # left by a process killed here before (we hold the lock)
        stale.unlink(missing_ok=True)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    if not _copy_store_template(db.with_name(f".{db.name}.{os.getpid()}.template.tmp"), tmp):
        MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)  # builds the schema
    os.replace(tmp, db)  # a connection MLflow keeps to the temporary name follows the same file


def _copy_store_template(copy: Path, tmp: Path) -> bool:
    """An empty store with MLflow's schema at head, copied to `copy`, opened there (MLflow only checks the schema's
    revision and adds its Default experiment) and renamed to `tmp`. The template is made once per MLflow version in
    extf's cache directory ($XDG_CACHE_HOME/extf, else ~/.cache/extf): creating the schema runs every one of MLflow's
    migrations, which costs 50x opening an existing store (2-8 s against 0.16 s here), once per project and per
    test. False, and nothing left behind, when anything about the template fails: MLflow then builds the schema."""
    import shutil

    from mlflow import MlflowClient

    copied = None
    try:
        copied = shutil.copyfile(_store_template(), copy)
        # opened under its own name: MLflow keeps an engine per URI, and `tmp` is MLflow's own way if this fails
        MlflowClient(f"sqlite:///{copy}").search_experiments(max_results=1)  # checks the schema's revision
        os.replace(copy, tmp)
        return True
    except Exception:  # an unwritable cache, a broken template: MLflow's own way, as without one
        copy.unlink(missing_ok=True)
        if copied is not None:
            _store_template_path().unlink(missing_ok=True)  # a template that does not open: made again next time
        return False


def _store_template_path() -> Path:
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "extf"
    return cache / f"mlflow-{mlflow.__version__}-empty-store.db"


def _store_template() -> Path:
    """The template store of this MLflow version, made first if missing (written under a temporary name and
    renamed into place, so concurrent first studies each make a whole one and one wins)."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    template = _store_template_path()
    if template.exists() and _has_schema(template):
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
    try:
        _initialize_tables(engine)  # MLflow's schema and migrations, no experiment (its location names a project)
    finally:
        engine.dispose()
    os.replace(tmp, template)
    return template


def _has_schema(store: Path) -> bool:
    """Whether `store` is an SQLite file with MLflow's schema (its alembic revision table), read-only."""
    import sqlite3

    try:
        with contextlib_closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as con:
            found = con.execute("select count(*) from sqlite_master where name = 'alembic_version'").fetchone()
        return found == (1,)
    except sqlite3.Error:
        return False


@contextmanager
def _file_lock(path: Path | None):
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _patched(module_name: str, attr: str, replace):
    """Temporarily set `module_name.attr` to `replace(original)`; nothing happens if MLflow renamed or dropped it."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:  # pragma: no cover
        yield
        return
    original = getattr(module, attr, None)
    if original is None:  # pragma: no cover - renamed or fixed upstream
        yield
        return
    setattr(module, attr, replace(original))
    try:
        yield
    finally:
        setattr(module, attr, original)


@contextmanager
def _no_requirement_check():
    """MLflow checks the model's pip requirements against the installed packages by scanning every installed
    distribution's files (0.45 s here). Ours are the installed versions themselves (`_pip_requirements`)."""
    def skip(original):
        return lambda *args, **kwargs: None

    with _patched("mlflow.utils.environment", "warn_dependency_requirement_mismatches", skip):
        yield


def _check_server(uri: str) -> None:
    """Fail at once, with what to do, when the configured MLflow server does not answer."""
    from extf.tracking.server import require

    _server["uri"], _server["lost"] = uri, None
    require(uri, "tracking.tracking_uri", "set tracking.tracking_uri to a running server, or log to the local store "
                                          "with tracking=mlflow")


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _pip_requirements() -> list[str]:
    """Pin the packages the model needs without MLflow's slow requirement inference (it re-imports the model)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for pkg in ("tensorflow", "keras"):
        try:
            pins.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            pass
    return pins


def make_tracker(cfg, experiment_name: str) -> Tracker:
    """The tracker `cfg.tracking` asks for; the tracking URI is always explicit."""
    tcfg = cfg.tracking
    if not tcfg.enabled:
        return NullTracker()
    if not tcfg.tracking_uri:
        raise ConfigError("tracking.tracking_uri is empty while tracking is enabled. Expected e.g. "
                          "sqlite:///mlruns/mlflow.db or http://127.0.0.1:5000; or use tracking=none. "
                          f"Received: tracking.tracking_uri={tcfg.tracking_uri!r}")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    if str(tcfg.tracking_uri).startswith(("http://", "https://")):
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(tcfg.request_retries)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(tcfg.request_timeout)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    return MlflowTracker(tcfg.tracking_uri, tcfg.artifact_root, experiment_name)
