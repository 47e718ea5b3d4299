"""The `extf` command: `extf train | tune | ui [overrides...]`.

Hydra composes extf's conf/ (overrides, `-m` sweeps, `--cfg job`, `--help`, tab completion). Nothing here imports
TensorFlow at module level, so `extf --help` and `--cfg job` stay fast. User errors print one message and exit
non-zero; `EXTF_DEBUG=1` adds the traceback.
"""

from __future__ import annotations

import os
import re
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
  report  one self-contained HTML report of a study: extf report [run_id=ID] [output=PATH] (default: latest tune)
  ui      serve the MLflow UI for mlruns/ on 127.0.0.1 (options: port=5000 root=.)
  server  start|stop|status an MLflow tracking server on 127.0.0.1 with a PostgreSQL store (port=5001 db=extf);
          studies log to it with tracking=mlflow_server
  init    write a new project of your own (its conf/, a package with a model and a data function, an
          experiment, README, Makefile): extf init DIR [name=PACKAGE]; then cd DIR && extf tune
  worker  join a distributed search as a worker: KERASTUNER_TUNER_ID=ID KERASTUNER_ORACLE_IP=HOST
          KERASTUNER_ORACLE_PORT=PORT extf worker STUDY_DIR  (`extf tune tuner.workers=N` starts local ones)

examples:
  extf train
  extf train model=mlp dataset=iris optimizer.learning_rate=0.01
  extf train dataset=nabiya model=rnn model.cell=lstm model.stateful=true trainer.batch_size=1
  extf train --cfg job                 print the composed config and exit
  extf train --help                    config groups and their options
  extf tune -m dataset=digits,iris model=mlp optimizer=adam,sgd

In a project (a folder with extf.yaml, conf/ or experiments/; `extf init` writes one), the project's conf/ and
experiments/ come before extf's own options, and its packages listed in extf.yaml's allow_targets may be _target_s;
--config-dir DIR names another config folder. See docs/own-project.md.

Tab completion of commands and overrides: eval "$(extf --shell-completion bash)"   (or zsh)
extf --version prints the installed version.
Set EXTF_DEBUG=1 to see tracebacks.
"""

COMMANDS = ("train", "tune", "evaluate", "predict", "runs", "ui", "worker", "report", "server", "init")


def conf_dir() -> Path:
    """extf's base config tree: $EXTF_CONFIG_DIR, or the `conf/` package data shipped inside extf (importlib.resources,
    so an installed wheel needs no checkout)."""
    override = os.environ.get("EXTF_CONFIG_DIR")
    if override:
        if not (Path(override) / "config.yaml").is_file():
            raise SystemExit(f"extf: error: EXTF_CONFIG_DIR has no config.yaml. Expected a directory like extf's "
                             f"own conf/ (config.yaml and one folder per group), or unset it to use extf's. "
                             f"Received: EXTF_CONFIG_DIR={override!r}")
        return Path(override).resolve()
    from importlib.resources import files

    base = Path(str(files("extf") / "conf"))
    if not (base / "config.yaml").is_file():  # a broken install (package data left out of the wheel)
        raise SystemExit(f"extf: error: extf's base config is missing from the installed package. Expected "
                         f"config.yaml in {base}; reinstall extf (pip install --force-reinstall extf). "
                         f"Received: {sorted(p.name for p in base.iterdir()) if base.is_dir() else 'no such folder'}")
    return base


def _environment_defaults() -> None:
    """TensorFlow's C++ logging and oneDNN off; MLflow's usage telemetry off (extf never uses the network at run
    time, and the telemetry thread's flush at exit cost every command about half a second here)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _terminate_as_interrupt() -> None:
    """SIGTERM (a scheduler, `kill`) ends the runs like Ctrl-C does: KILLED, never left RUNNING. Both are noted, so
    training still stops when Python drops the KeyboardInterrupt (errors.raise_if_interrupted)."""
    import signal

    from extf.errors import note_interrupt

    def handler(signum, frame):
        note_interrupt(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    default_hook = sys.unraisablehook

    def unraisable(info):  # the dropped interrupt is handled above: no "Exception ignored ... Traceback" for it
        if not isinstance(info.exc_value, KeyboardInterrupt):
            default_hook(info)

    sys.unraisablehook = unraisable


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
    if argv[0] in ("--version", "-V"):
        from extf import __version__

        print(f"extf {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("--shell-completion", "-sc") or (command in COMMANDS and {"--shell-completion", "-sc"} & set(rest)):
        # extf's completion: Hydra's own would complete a command named `extf-tune`
        from extf.completion import main as completion_main

        return completion_main([a for a in rest if a not in ("--shell-completion", "-sc")])
    if command not in COMMANDS:
        print(f"extf: error: unknown command {command!r}. Expected one of: {', '.join(COMMANDS)}. "
              f"Run `extf --help` for usage. Received: {command!r}", file=sys.stderr)
        return 2
    _environment_defaults()
    _terminate_as_interrupt()
    if command == "ui":
        return ui(rest)
    if command == "worker":
        return worker(rest)
    if command in ("runs", "report", "server", "init"):
        from importlib import import_module

        from extf.errors import ExtfError

        module = import_module({"runs": "extf.tracking.runs", "report": "extf.reporting.command",
                               "server": "extf.server", "init": "extf.scaffold"}[command])
        try:
            return module.main(rest)
        except ExtfError as e:
            fail(command, e, e.exit_code)
    return run_hydra(command, rest)


def worker(args: list[str]) -> int:
    """A worker process of a distributed search (started by `extf tune tuner.workers=N`, or by hand elsewhere)."""
    from extf.errors import ExtfError

    try:
        from extf.tuning.distributed import worker_main

        return worker_main(args)
    except KeyboardInterrupt:
        print("extf worker: interrupted; its trial run was ended as KILLED.", file=sys.stderr)
        return 130
    except ExtfError as e:
        fail("worker", e, e.exit_code)
    except Exception as e:
        print(f"extf worker: {type(e).__name__}: {getattr(e, 'details', lambda: None)() or e}", file=sys.stderr)
        if os.environ.get("EXTF_DEBUG") == "1":
            traceback.print_exception(e)
        return 1


class _LinePrefix:
    """A text stream that starts every line with `prefix` (a sweep job's output)."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix, self.at_line_start = stream, prefix, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.at_line_start and piece.strip():
                self.stream.write(self.prefix)
            self.stream.write(piece)
            self.at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def open_project(args: list[str]):
    """The user's project in the working directory (None if it is not one), set up on Hydra's search path, and the
    command line without extf's --config-dir. A command-line `allow_targets` is refused: only the project's
    extf.yaml opts code in."""
    from extf.errors import ConfigError
    from extf.project import PROJECT_FILE, find, split_config_dir

    config_dir, rest = split_config_dir(args)
    for a in rest:
        key = a.lstrip("+~").partition("=")[0]
        if key == "allow_targets" or key.startswith(("allow_targets.", "allow_targets[")):
            raise ConfigError(f"allow_targets comes from the project's {PROJECT_FILE} only: a command-line override "
                              f"cannot widen which code a config may run. Add the package to allow_targets in "
                              f"{PROJECT_FILE} (allow_targets: [myproj]). Received: {a}")
    project = find(Path.cwd(), config_dir)
    if project is not None:
        project.activate()
    return project, rest


def run_hydra(command: str, args: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig

    from extf.errors import ExtfError

    try:
        project, args = open_project(args)
    except ExtfError as e:
        print(f"extf {command}: error: {e}", file=sys.stderr)
        return e.exit_code
    allow_targets = list(project.allow_targets) if project is not None else []

    from extf.config.validate import register_resolvers

    register_resolvers()

    def task(cfg: DictConfig):
        try:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode
            from omegaconf import OmegaConf, open_dict

            from extf.commands import run_command
            from extf.errors import ConfigError

            composed = list(cfg.get("allow_targets") or [])
            if composed and composed != allow_targets:
                raise ConfigError(f"allow_targets comes from the project's extf.yaml only, not from a config file "
                                  f"or override: remove it there and list the packages in extf.yaml. Received: "
                                  f"allow_targets={composed} in the composed config, {allow_targets} in extf.yaml")
            with open_dict(cfg):
                cfg.allow_targets = allow_targets

            # resolve=False: an override's text such as `key=${oc.env:X}` is not an interpolation to resolve here
            hydra_cfg = HydraConfig.get()
            overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
            _set_env("HYDRA_FULL_ERROR", saved_full_error)  # the processes the command starts see the user's value
            # a sweep's jobs may run at once (joblib launcher): each line says which job it comes from
            out = (_LinePrefix(sys.stdout, f"[job {hydra_cfg.job.num}] ")
                   if hydra_cfg.mode == RunMode.MULTIRUN else sys.stdout)
            try:
                return run_command(command, cfg, out=out, overrides=overrides)
            finally:
                os.environ["HYDRA_FULL_ERROR"] = "1"
        except KeyboardInterrupt:
            again = " Run the same command again to resume the study." if command == "tune" else ""
            print(f"extf {command}: interrupted; the MLflow runs were ended as KILLED.{again}", file=sys.stderr)
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
    if project is not None and writes:
        for line in project.shadowed(conf_dir()):
            print(f"extf {command}: note: {line}", file=sys.stderr)
    saved, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [f"extf-{command}", *args]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors; extf prints them as one message
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(task)()
    except BrokenPipeError:  # `extf train --help | head`: the reader has gone, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if saved_full_error == "1" or os.environ.get("EXTF_DEBUG") == "1":
            raise
        print(f"extf {command}: error: {hydra_error_message(e, args)}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
        _set_env("HYDRA_FULL_ERROR", saved_full_error)
    return 0


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def hydra_error_message(e: Exception, args: list[str] = ()) -> str:
    """Hydra's composition errors (override syntax, unknown group options, unknown keys, unreadable YAML) as one extf
    message."""
    from hydra.errors import MissingConfigException, OverrideParseException

    def one_line(text: str) -> str:
        return " ".join(str(text).split())

    from extf.errors import ExtfError

    cause = e
    while cause is not None:  # an extf check inside Hydra's composition (a resolver): its own message
        if isinstance(cause, ExtfError):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    unknown = re.match(r"Could not override '([^']+)'\.\s+To append to your config use \+(\S+)", str(e))
    if unknown and "not in struct" in f"{e} {e.__cause__}":
        return _unknown_key_message(unknown.group(1), unknown.group(2), args)

    if isinstance(e, OverrideParseException):
        return (f"cannot parse the override {e.override!r}: {one_line(e.message.splitlines()[0])}. Expected "
                f"key=value (e.g. model=mlp, trainer.epochs=5, 'key=[1,2]'); see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic. Received: {e.override}")
    if isinstance(e, MissingConfigException) and e.missing_cfg_file and e.options is not None:
        group, _, name = e.missing_cfg_file.rpartition("/")
        hint = (f" The search space follows the model: add conf/search_space/{name}.yaml (what extf tune "
                f"searches for model={name}), or set search_space=none." if group == "search_space" else "")
        return (f"no {group} named {name!r}. Expected one of: {', '.join(e.options)} (the files in "
                f"conf/{group}/ of extf and of the project).{hint} Received: {group}={name}")
    problem_mark = getattr(e, "problem_mark", None) or getattr(e.__cause__, "problem_mark", None)
    if problem_mark is not None:  # yaml's parser and scanner errors name the file and the line
        return (f"a config file is not valid YAML: {one_line(e)}. Fix the YAML at that line. "
                f"Received: {problem_mark.name}")
    if isinstance(e, OSError) and e.filename:  # e.g. hydra.run.dir under a folder that cannot be created
        return (f"cannot create {str(e.filename)!r} ({e.strerror}). Expected a writable place for Hydra's run "
                f"directory: set paths.root_dir=DIR or hydra.run.dir=DIR. Received: {e.filename}")
    text = str(e).split("\nConfig search path:")[0]
    cause = e.__cause__
    if cause is not None and str(cause) not in text:
        text += f": {str(cause).splitlines()[0]}"
    return one_line(text)


def _unknown_key_message(key: str, override: str, args: list[str]) -> str:
    """An override of a key the config does not have: the closest existing key, and the keys beside it (from the
    config composed with the command's other plain overrides, so that model=cnn shows the CNN's keys)."""
    import difflib

    from omegaconf import DictConfig, OmegaConf

    parent, _, leaf = key.rpartition(".")
    keys: list[str] = []
    hint = ""
    try:
        from hydra import compose, initialize_config_dir

        others = [a for a in args if "=" in a and not a.startswith(("-", "hydra")) and "," not in a
                  and a.partition("=")[0].lstrip("+~") != key]
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(node, DictConfig):
            keys = sorted(str(k) for k in node.keys())
            close = difflib.get_close_matches(leaf, keys, n=1)
            hint = f" Did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
        else:  # the misspelling is higher up (modle.filters): the closest top-level key
            head, _, rest = key.partition(".")
            close = difflib.get_close_matches(head, [str(k) for k in cfg.keys()], n=1)
            hint = f" Did you mean {close[0]}.{rest}?" if close else ""
    except Exception:  # noqa: BLE001 - a suggestion is a bonus: the message stands without it
        keys = []
    listing = (f" Expected one of the keys of {parent or 'the config'}: {', '.join(keys)}." if keys else "")
    adding = f" (A new search-space entry is added with +{override}.)" if key.startswith("search_space.") else ""
    return f"unknown config key {key!r}.{hint}{listing}{adding} Received: {override}"


def _unwritable_root(args: list[str]) -> str | None:
    """Hydra creates its run directory under paths.root_dir before extf runs; check it first for a clear message."""
    root = os.environ.get("EXTF_ROOT", ".")
    source = "EXTF_ROOT" if "EXTF_ROOT" in os.environ else "the working directory"
    for arg in args:
        if arg.lstrip("+").startswith("paths.root_dir="):
            root, source = arg.split("=", 1)[1], "paths.root_dir"
    if not root.strip():  # Hydra's run dir `${paths.root_dir}/outputs` would then be /outputs
        return (f"{source} is empty. Expected the directory where outputs/ and mlruns/ go, e.g. paths.root_dir=. "
                f"Received: {source}={root!r}")
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


def mlflow_ui_command(mlruns: Path, port: str | int) -> list[str]:
    """The `mlflow ui` command line of `extf ui` (tests/e2e/test_browser.py starts the same server)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{mlruns}/mlflow.db",
            "--host", "127.0.0.1", "--port", str(port)]


def ui(args: list[str]) -> int:
    """`mlflow ui` on the project's store, bound to 127.0.0.1 only."""
    from extf.errors import ConfigError
    from extf.options import local_store_uri, parse_options

    for a in args:
        if a.partition("=")[0].lstrip("-") == "host":
            print("extf ui: error: the MLflow UI is served on 127.0.0.1 only: it has no login, so anyone who can "
                  "reach the port could read and change the runs. To open it from another machine, forward the "
                  f"port over SSH (ssh -L 5000:127.0.0.1:5000 HOST). Received: {a!r}", file=sys.stderr)
            return 2
    try:
        opts = parse_options(args, {"port": "5000"}, "ui", "port=NUMBER or root=DIR")
        if not opts["port"].isdigit():
            raise ConfigError(f"port must be a number. Received: port={opts['port']!r}")
        local_store_uri(opts["root"], "ui")
    except ConfigError as e:
        fail("ui", e, e.exit_code)
    cmd = mlflow_ui_command(Path(opts["root"]).resolve() / "mlruns", opts["port"])
    print(f"MLflow UI: http://127.0.0.1:{opts['port']}  (Ctrl-C to stop)", flush=True)
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover


def entry() -> None:
    """The `extf` console script: main(), then a quick exit. Exit handlers run as usual (atexit: MLflow's, logging's,
    weakref finalizers), but the interpreter skips tearing down TensorFlow's,
    Keras' and MLflow's thousands of modules one by one: 0.5 to 1.5 s of every command here, for nothing."""
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python prints it
        print(code, file=sys.stderr)
        code = 1
    _exit_now(code or 0)


def _exit_now(code: int) -> None:
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)  # a thread still working (a sweep's launcher, say): the interpreter's own exit waits for it
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
