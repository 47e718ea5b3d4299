"""An MLflow tracking server on 127.0.0.1 with a PostgreSQL backend store: is it up, start it, stop it.

The store is a database on the machine's PostgreSQL (Debian's `postgresql` package: the cluster is started and the
role and database are created when missing), or any SQLAlchemy URI in $EXTF_BACKEND_STORE_URI. Artifacts are served
by the server (proxied) from <root>/mlruns/server-artifacts. Studies log to it with `tracking=mlflow_server`; the
`extf server` command (extf.commands.server) drives this module.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from extf.errors import ConfigError, ExtfError

ROLE = "extf"


def healthy(uri: str, timeout: float = 2.0) -> bool:
    """Whether the MLflow server at `uri` answers its /health endpoint."""
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


@dataclass(frozen=True)
class Server:
    """The server extf runs for a project on a port: its address and the files it keeps under <root>/mlruns/."""

    port: str
    root: Path
    db: str = "extf"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.root / "mlruns" / "server" / f"server-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "mlruns" / "server" / f"server-{self.port}.log"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlruns" / "server-artifacts"


def start(server: Server, wait: float = 120) -> str:
    """Start `mlflow server` in its own process group and wait until it answers; returns its backend store URI."""
    store = postgres_uri(server.db)
    server.pid_file.parent.mkdir(parents=True, exist_ok=True)
    server.artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", server.port,
           "--backend-store-uri", store, "--artifacts-destination", str(server.artifacts), "--workers", "2"]
    with open(server.log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server.pid_file.write_text(str(proc.pid))
    deadline = time.time() + wait
    while time.time() < deadline:
        if healthy(server.uri):
            return store
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    stop(server)
    tail = server.log_file.read_text(errors="replace").strip().splitlines()[-5:]
    raise ExtfError(f"The MLflow server did not start at {server.uri}. Expected it to answer /health within "
                    f"{wait:.0f} s; its log ({server.log_file}) ends with: {' | '.join(tail)}. "
                    f"Received: exit code {proc.poll()}")


def stop(server: Server) -> bool:
    """Stop the server (and its uvicorn workers) that `start` left on this port; False when there was none."""
    if not server.pid_file.exists():
        return False
    pid = int(server.pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.pid_file.unlink(missing_ok=True)
    return True
