"""The `extf` command: `extf train | tune | ui [overrides...]`.

Hydra composes conf/ (overrides, `-m` sweeps, `--cfg job`, `--help`, tab completion). Nothing here imports
TensorFlow at module level, so `extf --help` and `--cfg job` stay fast. User errors print one message and exit
non-zero; `EXTF_DEBUG=1` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

USAGE = """\
usage: extf COMMAND [hydra options] [key=value overrides...]

ExTensorflow: configuration-driven experiments and hyperparameter tuning for TensorFlow/Keras.

commands:
  train   fit one model from the config (a study of one fixed trial), test it once, log it to MLflow
  tune    search hyperparameters with keras-tuner on the validation split, test the best model once
  evaluate  recompute a logged study's test metrics: extf evaluate run_id=ID [dataset=...]
  predict   probabilities and labels for new data: extf predict run_id=ID input=x.csv|x.npy|DIR output=p.csv
  runs    list the studies with their test metrics; `extf runs run_id=ID` shows a study's leaderboard
  ui      serve the MLflow UI for mlruns/ on 127.0.0.1 (options: port=5000 root=.)

examples:
  extf train
  extf train model=mlp dataset=iris optimizer.learning_rate=0.01
  extf train dataset=nabiya model=rnn model.cell=lstm model.stateful=true trainer.batch_size=1
  extf train --cfg job                 print the composed config and exit
  extf train --help                    config groups and their options
  extf tune -m dataset=digits,iris model=mlp,cnn

Set EXTF_DEBUG=1 to see tracebacks.
"""

COMMANDS = ("train", "tune", "evaluate", "predict", "runs", "ui")


def conf_dir() -> Path:
    """conf/ of the checkout extf runs from (editable install), or $EXTF_CONFIG_DIR, or ./conf."""
    candidates = [os.environ.get("EXTF_CONFIG_DIR"), Path(__file__).resolve().parents[2] / "conf", Path.cwd() / "conf"]
    for c in candidates:
        if c and (Path(c) / "config.yaml").is_file():
            return Path(c).resolve()
    raise SystemExit("extf: error: cannot find the config directory (conf/ with config.yaml). Expected it next to "
                     "src/ in the extf checkout; set EXTF_CONFIG_DIR=/path/to/conf. Received: looked in "
                     + ", ".join(str(c) for c in candidates if c))


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _terminate_as_interrupt() -> None:
    """SIGTERM (a scheduler, `kill`) ends the runs like Ctrl-C does: KILLED, never left RUNNING."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def fail(command: str, e: BaseException, code: int) -> None:
    print(f"extf {command}: error: {e}", file=sys.stderr)
    if os.environ.get("EXTF_DEBUG") == "1":
        traceback.print_exception(e)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"extf: error: unknown command {command!r}. Expected one of: {', '.join(COMMANDS)}. "
              f"Run `extf --help` for usage. Received: {command!r}", file=sys.stderr)
        return 2
    _quiet_tensorflow()
    _terminate_as_interrupt()
    if command == "ui":
        return ui(rest)
    if command == "runs":
        from extf.errors import ExtfError
        from extf.tracking.runs import main as runs_main

        try:
            return runs_main(rest)
        except ExtfError as e:
            fail(command, e, e.exit_code)
    return run_hydra(command, rest)


def run_hydra(command: str, args: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig

    def task(cfg: DictConfig):
        try:
            from hydra.core.hydra_config import HydraConfig

            from extf.commands import run_command

            return run_command(command, cfg, overrides=list(HydraConfig.get().overrides.task))
        except KeyboardInterrupt:
            print(f"extf {command}: interrupted; the MLflow runs were ended as KILLED.", file=sys.stderr)
            sys.exit(130)
        except Exception as e:
            from extf.errors import ExtfError

            if isinstance(e, ExtfError):
                fail(command, e, e.exit_code)
            print(f"extf {command}: internal error: {type(e).__name__}: {e}\nThis is a bug in extf or an unexpected "
                  f"environment; EXTF_DEBUG=1 shows the traceback.", file=sys.stderr)
            if os.environ.get("EXTF_DEBUG") == "1":
                traceback.print_exception(e)
            sys.exit(1)

    writes = not any(a in ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help") or a.startswith("--shell")
                     for a in args)
    problem = _unwritable_root(args) if writes else None
    if problem:
        print(f"extf {command}: error: {problem}", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [f"extf-{command}", *args]
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(task)()
    finally:
        sys.argv = saved
    return 0


def _unwritable_root(args: list[str]) -> str | None:
    """Hydra creates its run directory under paths.root_dir before extf runs; check it first for a clear message."""
    root = os.environ.get("EXTF_ROOT", ".")
    source = "EXTF_ROOT" if "EXTF_ROOT" in os.environ else "the working directory"
    for arg in args:
        if arg.lstrip("+").startswith("paths.root_dir="):
            root, source = arg.split("=", 1)[1], "paths.root_dir"
    path = Path(root).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".extf-write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        return (f"cannot write to {str(path)!r} ({e.strerror}), where outputs/ and mlruns/ go. Expected a writable "
                f"directory: set paths.root_dir=DIR (or EXTF_ROOT) to one. Received: {source}={root!r}")
    return None


def ui(args: list[str]) -> int:
    """`mlflow ui` on the project's store, bound to 127.0.0.1 only."""
    opts = {"port": "5000", "root": os.environ.get("EXTF_ROOT", ".")}
    for a in args:
        key, sep, value = a.partition("=")
        if not sep or key not in opts:
            print(f"extf ui: error: unknown option {a!r}. Expected port=NUMBER or root=DIR. Received: {a!r}",
                  file=sys.stderr)
            return 2
        opts[key] = value
    if not opts["port"].isdigit():
        print(f"extf ui: error: port must be a number. Received: port={opts['port']!r}", file=sys.stderr)
        return 2
    mlruns = Path(opts["root"]).resolve() / "mlruns"
    if not (mlruns / "mlflow.db").exists():
        print(f"extf ui: error: no MLflow store at {mlruns}/mlflow.db yet. Run `extf train` (or `make train`) first, "
              f"or pass root=DIR of a project that has one. Received: root={opts['root']!r}", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{mlruns}/mlflow.db",
           "--host", "127.0.0.1", "--port", opts["port"]]
    print(f"MLflow UI: http://127.0.0.1:{opts['port']}  (Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
