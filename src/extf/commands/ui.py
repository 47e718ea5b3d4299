"""`extf ui`: the MLflow UI on the project's store, bound to 127.0.0.1 only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from extf.commands.options import local_store_uri, parse_options
from extf.errors import ConfigError

HELP = "serve the MLflow UI for mlruns/ on 127.0.0.1 (options: port=5000 root=.)"
OPTIONS = ("port=", "root=")  # what tab completion offers


def mlflow_ui_command(mlruns: Path, port: str | int) -> list[str]:
    """The `mlflow ui` command line of `extf ui` (tests/e2e/test_browser.py starts the same server)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{mlruns}/mlflow.db",
            "--host", "127.0.0.1", "--port", str(port)]


def run(args: list[str]) -> int:
    for a in args:
        if a.partition("=")[0].lstrip("-") == "host":
            raise ConfigError("the MLflow UI is served on 127.0.0.1 only: it has no login, so anyone who can reach "
                              "the port could read and change the runs. To open it from another machine, forward "
                              f"the port over SSH (ssh -L 5000:127.0.0.1:5000 HOST). Received: {a!r}")
    opts = parse_options(args, {"port": "5000"}, "ui", "port=NUMBER or root=DIR")
    if not opts["port"].isdigit():
        raise ConfigError(f"port must be a number. Received: port={opts['port']!r}")
    local_store_uri(opts["root"], "ui")
    cmd = mlflow_ui_command(Path(opts["root"]).resolve() / "mlruns", opts["port"])
    print(f"MLflow UI: http://127.0.0.1:{opts['port']}  (Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, cmd)  # the UI replaces this process: Ctrl-C and exit codes are mlflow's
    return 0  # pragma: no cover
