"""`key=value` options of the commands that are not Hydra apps (runs, report, ui, server), and the MLflow store they
read. No heavy imports here: these commands answer fast."""

from __future__ import annotations

import os
from pathlib import Path

from extf.errors import ConfigError
from extf.tracking.server import require


def parse_options(args: list[str], defaults: dict, command: str, expected: str, allow_empty: bool = True) -> dict:
    """`defaults` (and root=DIR) updated from `key=value` args; an unknown key is one clear error naming the
    `expected` ones."""
    opts = {"root": os.environ.get("EXTF_ROOT", "."), **defaults}
    for a in args:
        key, sep, value = a.partition("=")
        if not sep or key not in opts:
            raise ConfigError(f"unknown option {a!r} for extf {command}. Expected {expected} (see `extf --help`). "
                              f"Received: {a!r}")
        if not value and not allow_empty:
            raise ConfigError(f"{key} is empty. Expected {key}=VALUE, or leave it out for the default. "
                              f"Received: {a!r}")
        opts[key] = value
    return opts


def local_store_uri(root: str, command: str) -> str:
    """sqlite:///<root>/mlruns/mlflow.db (conf/tracking/mlflow.yaml), which must exist already."""
    db = Path(root).resolve() / "mlruns" / "mlflow.db"
    if not db.exists():
        raise ConfigError(f"no MLflow store at {db} yet, so nothing for extf {command} to show. Run `extf tune` (or "
                          f"`make tune`) first, or pass root=DIR of a project that has one. Received: root={root!r}")
    return f"sqlite:///{db}"


def store_uri(opts: dict, command: str) -> str:
    """The MLflow store a read command uses: `tracking_uri=` (an MLflow server, e.g. `make server`'s
    http://127.0.0.1:5001, or another sqlite:/// store), else the project's own mlruns/mlflow.db."""
    uri = opts.get("tracking_uri")
    if not uri:
        return local_store_uri(opts["root"], command)
    if uri.startswith(("http://", "https://")):
        require(uri, "tracking_uri", "or leave tracking_uri out to read this project's mlruns/")
        return uri
    if uri.startswith("sqlite:///"):
        if not Path(uri.removeprefix("sqlite:///")).is_file():
            raise ConfigError(f"No MLflow store at {uri.removeprefix('sqlite:///')}. Expected an existing SQLite "
                              f"store. Received: tracking_uri={uri!r}")
        return uri
    raise ConfigError(f"tracking_uri must be an MLflow server address (http://HOST:PORT) or a sqlite:///PATH "
                      f"store. Received: tracking_uri={uri!r}")
