"""`extf server start|stop|status`: an MLflow tracking server on 127.0.0.1 with a PostgreSQL store (the lifecycle
itself: extf.tracking.server)."""

from __future__ import annotations

from pathlib import Path

from extf.commands.options import parse_options
from extf.errors import ConfigError
from extf.tracking.server import Server, healthy, start, stop

HELP = ("start|stop|status an MLflow tracking server on 127.0.0.1 with a PostgreSQL store (port=5001 db=extf); "
        "studies log to it with tracking=mlflow_server")
DEFAULTS = {"port": "5001", "db": "extf"}


def parse(args: list[str]) -> tuple[str, Server]:
    """The action (start by default) and the server the options name."""
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
    return action, Server(port=opts["port"], root=Path(opts["root"] or ".").resolve(), db=opts["db"])


def run(args: list[str]) -> int:
    action, server = parse(args)
    if action == "status":
        up = healthy(server.uri)
        print(f"MLflow server at {server.uri}: {'up' if up else 'down'}")
        return 0 if up else 1
    if action == "stop":
        if stop(server):
            print(f"Stopped the MLflow server on port {server.port}.")
        else:
            print(f"No MLflow server started by extf on port {server.port} (no {server.pid_file}).")
        return 0
    if healthy(server.uri):
        print(f"An MLflow server already answers at {server.uri}.")
        return 0
    store = start(server)
    print(f"MLflow server: {server.uri} (backend store {store.split('@')[-1]}, artifacts {server.artifacts}); log "
          f"{server.log_file}. Stop it with `extf server stop port={server.port}` (make server-stop).")
    return 0
