"""A project's new MLflow store is a copy of an empty store made once per MLflow version (MLflow's migrations cost
about 50x opening a store); a bad template falls back to MLflow's own schema creation."""

from __future__ import annotations

import sqlite3

import pytest

from extf.tracking import mlflow_tracker
from extf.tracking.mlflow_tracker import MlflowTracker


def _open(root):
    return MlflowTracker(f"sqlite:///{root}/mlruns/mlflow.db", str(root / "mlruns"), "extf")


def _experiments(root) -> list[str]:
    with sqlite3.connect(root / "mlruns" / "mlflow.db") as con:
        return sorted(name for (name,) in con.execute("select name from experiments"))


def test_second_store_is_copied_without_migrations(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = _open(tmp_path / "a")
    templates = list((tmp_path / "cache" / "extf").glob("mlflow-*-empty-store.db"))
    assert len(templates) == 1
    with sqlite3.connect(templates[0]) as con:  # no experiment in the template: its location would name project a
        assert con.execute("select count(*) from experiments").fetchone() == (0,)

    import mlflow.store.db.utils as db_utils

    def no_migrations(engine):
        raise AssertionError("MLflow's migrations ran although the template exists")

    monkeypatch.setattr(db_utils, "_initialize_tables", no_migrations)
    second = _open(tmp_path / "b")
    assert _experiments(tmp_path / "b") == ["Default", "extf"]
    run = second.start_study("s", None, {"p": 1}, {})
    second.end_run(run, "FINISHED")
    location = second.client.get_experiment(second.experiment_id).artifact_location
    assert location == (tmp_path / "b" / "mlruns" / "extf").as_uri()
    assert first.experiment_id == second.experiment_id


@pytest.mark.parametrize("bad", [b"not a database", b""])
def test_a_bad_template_falls_back_to_mlflow(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import mlflow

    template = tmp_path / "cache" / "extf" / f"mlflow-{mlflow.__version__}-empty-store.db"
    template.parent.mkdir(parents=True)
    template.write_bytes(bad)
    tracker = _open(tmp_path / "p")
    assert _experiments(tmp_path / "p") == ["Default", "extf"]
    assert not list((tmp_path / "p" / "mlruns").glob(".*tmp*"))  # nothing half-made left beside the store
    assert mlflow_tracker._has_schema(template)  # a template without MLflow's schema is made again
    tracker.end_run(tracker.start_study("s", None, {}, {}), "FINISHED")


def test_an_unwritable_cache_falls_back_to_mlflow(tmp_path, monkeypatch):
    monkeypatch.setattr(mlflow_tracker, "_store_template", lambda: (_ for _ in ()).throw(PermissionError(13, "no")))
    _open(tmp_path / "p")
    assert _experiments(tmp_path / "p") == ["Default", "extf"]
