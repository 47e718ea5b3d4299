"""`extf evaluate` and `extf predict` download the logged model without MLflow's progress bars ("Downloading
artifacts: 100%|...") among extf's lines; EXTF_DEBUG=1 shows them, and so does a user's own MLflow setting."""

from __future__ import annotations

import os

import pytest

from extf import cli


@pytest.fixture
def env(monkeypatch):
    """A copy of the environment for the test (os.getenv reads it too, as MLflow does)."""
    copy = {k: v for k, v in os.environ.items() if k not in ("EXTF_DEBUG", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")}
    monkeypatch.setattr(os, "environ", copy)
    return copy


def download_bar():
    """What MLflow's download_artifacts shows for a download: its progress bar, or None."""
    from mlflow.utils.file_utils import ArtifactProgressBar

    with ArtifactProgressBar.files(desc="Downloading artifacts", total=1) as bar:
        shown = bar.pbar
    return shown


def test_no_download_progress_bar_by_default(env):
    assert download_bar() is not None  # MLflow's own default: a bar on every download
    cli._environment_defaults()
    assert env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false" and download_bar() is None


@pytest.mark.parametrize("setting", [{"EXTF_DEBUG": "1"}, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"}])
def test_the_bar_shows_with_extf_debug_or_the_users_own_setting(env, setting):
    env.update(setting)
    cli._environment_defaults()
    assert download_bar() is not None
