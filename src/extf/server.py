"""`extf server start|stop|status`: an MLflow tracking server on 127.0.0.1 with a PostgreSQL backend store.

The store is a database on the machine's PostgreSQL (Debian's `postgresql` package: the cluster is started and the
role and database are created when missing), or any SQLAlchemy URI in $EXTF_BACKEND_STORE_URI. Artifacts are served
by the server (proxied) from <root>/mlruns/server-artifacts. Studies log to it with `tracking=mlflow_server`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from extf.errors import ConfigError, ExtfError
from extf.options import parse_options

DEFAULTS = {"port": "5001", "db": "extf"}
ROLE = "extf"


def parse(args: list[str]) -> tuple[str, dict[str, str]]:
    action = args[0] if args and "=" not in args[0] else "start"
    rest = args[1:] if args and "=" not in args[0] else args
    if action not in ("start", "stop", "status"):
        raise ConfigError(f"extf server takes start, stop or status. Received: {action!r}")
    opts = parse_options(rest, DEFAULTS, "server", "port=NUMBER, db=NAME or root=DIR (the project, for "
                         "mlruns/server-artifacts)")
    if not opts["port"].isdigit() or not 0 < int(opts["port"]) < 65536:
        raise ConfigError(f"port must be a TCP port number (1-65535). Received: port={opts['port']!r}")
    if not opts["db"].replace("_", "").isalnum():
        raise ConfigError(f"db must be a database name of letters, digits and _. Received: db={opts['db']!r}")
    opts["root"] = str(Path(opts["root"] or ".").resolve())
    return action, opts


def healthy(uri: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as r:  # noqa: S310 - local URI
            return r.status == 200
    except OSError:
        return False


def require(uri: str, received: str, otherwise: str) -> None:
    """One clear error when the MLflow server at `uri` does not answer; `otherwise`: the user's other way out."""
    if not healthy(uri, timeout=5):
        raise ConfigError(f"Cannot reach the MLflow tracking server at {uri}. Start it with `make server` (or `extf "
                          f"server start`), {otherwise}. Received: {received}={uri!r}")


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ExtfError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-500:]}. Received: {' '.join(cmd)}")
    return proc.stdout


def postgres_uri(db: str) -> str:
    """$EXTF_BACKEND_STORE_URI, or a database on the local Debian PostgreSQL cluster (started, role and database
    created when missing)."""
    if os.environ.get("EXTF_BACKEND_STORE_URI"):
        return os.environ["EXTF_BACKEND_STORE_URI"]
    if not shutil.which("pg_lsclusters"):
        raise ConfigError("PostgreSQL is not installed (no pg_lsclusters). Install it with `apt-get install -y "
                          "postgresql`, or point the server at a database with EXTF_BACKEND_STORE_URI="
                          "postgresql://USER:PASSWORD@HOST:PORT/DB. Received: no local PostgreSQL")
    clusters = [ln.split() for ln in _run(["pg_lsclusters", "--no-header"], "Listing PostgreSQL clusters")
                .splitlines() if ln.strip()]
    if not clusters:
        raise ConfigError("PostgreSQL has no cluster. Create one with `pg_createcluster 15 main` (Debian), or set "
                          "EXTF_BACKEND_STORE_URI. Received: pg_lsclusters lists none")
    version, name, port, status = clusters[0][:4]
    if status != "online":
        _run(["pg_ctlcluster", version, name, "start"], f"Starting PostgreSQL {version}/{name}")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def sql(statement: str, database: str = "postgres") -> str:
        return _run([*as_postgres, "psql", "-p", port, "-d", database, "-tAc", statement], "PostgreSQL").strip()

    if sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'") != "1":
        sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE}'")
    if sql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
        sql(f"CREATE DATABASE {db} OWNER {ROLE}")
    return f"postgresql+psycopg2://{ROLE}:{ROLE}@127.0.0.1:{port}/{db}"


def _files(opts: dict) -> tuple[Path, Path, Path]:
    base = Path(opts["root"]) / "mlruns" / "server"
    return base, base / f"server-{opts['port']}.pid", base / f"server-{opts['port']}.log"


def start(opts: dict, wait: float = 120) -> str:
    uri = f"http://127.0.0.1:{opts['port']}"
    base, pid_file, log_file = _files(opts)
    if healthy(uri):
        print(f"An MLflow server already answers at {uri}.")
        return uri
    store = postgres_uri(opts["db"])
    artifacts = Path(opts["root"]) / "mlruns" / "server-artifacts"
    base.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", opts["port"],
           "--backend-store-uri", store, "--artifacts-destination", str(artifacts), "--workers", "2"]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    deadline = time.time() + wait
    while time.time() < deadline:
        if healthy(uri):
            print(f"MLflow server: {uri} (backend store {store.split('@')[-1]}, artifacts {artifacts}); log "
                  f"{log_file}. Stop it with `extf server stop port={opts['port']}` (make server-stop).")
            return uri
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    stop(opts, quiet=True)
    tail = log_file.read_text(errors="replace").strip().splitlines()[-5:]
    raise ExtfError(f"The MLflow server did not start at {uri}. Expected it to answer /health within {wait:.0f} s; "
                    f"its log ({log_file}) ends with: {' | '.join(tail)}. Received: exit code {proc.poll()}")


def stop(opts: dict, quiet: bool = False) -> None:
    _, pid_file, _ = _files(opts)
    if not pid_file.exists():
        if not quiet:
            print(f"No MLflow server started by extf on port {opts['port']} (no {pid_file}).")
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)  # the server and its uvicorn workers
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)
    if not quiet:
        print(f"Stopped the MLflow server on port {opts['port']}.")


def main(args: list[str]) -> int:
    action, opts = parse(args)
    if action == "start":
        start(opts)
    elif action == "stop":
        stop(opts)
    else:
        uri = f"http://127.0.0.1:{opts['port']}"
        up = healthy(uri)
        print(f"MLflow server at {uri}: {'up' if up else 'down'}")
        return 0 if up else 1
    return 0
