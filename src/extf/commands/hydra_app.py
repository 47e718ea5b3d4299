"""The Hydra glue of the commands that compose a config (train, tune, evaluate, predict): the project on Hydra's
search path, Hydra's run, and its composition errors as one extf message.

Hydra composes extf's conf/ (overrides, `-m` sweeps, `--cfg job`, `--help`, tab completion). Nothing here imports
TensorFlow, so `extf train --help` and `--cfg job` stay fast. Errors are not printed here: they reach the one error
boundary (extf.cli), a job's own errors carried out through Hydra unchanged.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from extf.console import debugging
from extf.errors import ConfigError, ExtfError, in_chain

# A command's job: the composed config, the command line's overrides and the stream its lines go to -> its result
Job = Callable[[Any, list, TextIO], Any]
INFO_FLAGS = ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help")


class _JobEnded(BaseException):
    """What ended a job, carried out through Hydra untouched. Hydra catches a job's Exception: in a run it would
    come back as a Hydra error, in a sweep only after every other job had run. A BaseException ends it at once."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error


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


def run(command: str, args: list[str], job: Job) -> int:
    """`extf COMMAND [hydra options] [overrides]`: compose extf's config (the project's first), then job(cfg,
    overrides, out) for each composed config (one, or a sweep's)."""
    import hydra

    from extf.config.validate import register_resolvers

    project, args = open_project(args)
    allow_targets = list(project.allow_targets) if project is not None else []
    register_resolvers()
    writes = not any(a in INFO_FLAGS or a.startswith("--shell") for a in args)
    problem = _unwritable_root(args) if writes else None
    if problem:
        raise ConfigError(problem)
    if project is not None and writes:
        for line in project.shadowed(conf_dir()):
            print(f"extf {command}: note: {line}", file=sys.stderr)
    saved, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [f"extf-{command}", *args]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors; extf says them as one message
    ended = None
    try:
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(
            _task(job, allow_targets, saved_full_error))()
    except _JobEnded as e:
        ended = e.error
    except BrokenPipeError:  # `extf train --help | head`: the reader has gone, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        raise ConfigError(hydra_error_message(e, args)) from e
    finally:
        sys.argv = saved
        _set_env("HYDRA_FULL_ERROR", saved_full_error)
    if ended is not None:
        raise ended  # outside the except block: the error keeps its own context for EXTF_DEBUG's traceback
    return 0


def _task(job: Job, allow_targets: list[str], full_error: str | None):
    """Hydra's task function: the composed config checked and completed, then the command's job."""

    def task(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from omegaconf import OmegaConf, open_dict

        try:
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
            _set_env("HYDRA_FULL_ERROR", full_error)  # the processes the command starts see the user's value
            if not debugging():  # Hydra's job logging shows every library's INFO lines (matplotlib's first-run
                logging.getLogger().setLevel(logging.WARNING)  # "generated new fontManager"): warnings and up
            # a sweep's jobs may run at once (joblib launcher): each line says which job it comes from
            out = (_LinePrefix(sys.stdout, f"[job {hydra_cfg.job.num}] ")
                   if hydra_cfg.mode == RunMode.MULTIRUN else sys.stdout)
            try:
                return job(cfg, overrides, out)
            finally:
                os.environ["HYDRA_FULL_ERROR"] = "1"
        except BaseException as e:  # noqa: B036 - every ending, Ctrl-C included, goes to the error boundary
            raise _JobEnded(e) from None

    return task


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

    own = in_chain(e, ExtfError)  # an extf check inside Hydra's composition (a resolver): its own message
    if own is not None:
        return str(own)
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
