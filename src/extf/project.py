"""A user's project: the folder `extf` runs in, with its own config folder and experiments on Hydra's search path and
its own packages opted in to `_target_` (docs/own-project.md).

The project is the working directory. It is one when it has an `extf.yaml`, a `conf/` or an `experiments/` folder, or
when `--config-dir DIR` names its config folder. `extf.yaml` (every key optional):

    config_dir: conf          # the project's config folder (default: conf/ when it exists)
    allow_targets: [myproj]   # packages whose callables a `_target_` may name, beside keras, extf and sklearn

Search path: the project's config folder, then its experiments/ (as the `experiment` group), then extf's own config:
a project option shadows extf's option of the same name (extf says so on stderr). Nothing here imports TensorFlow or
MLflow.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

from extf.errors import ConfigError

PROJECT_FILE = "extf.yaml"
KEYS = ("config_dir", "allow_targets")
SEARCHPATH_ENV = "EXTF_PROJECT_SEARCHPATH"  # the project's search-path entries (one a line), for its child processes
EXPERIMENTS_SCHEME = "extf-experiments"
EXPERIMENT_GROUP = "experiment"
PACKAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Project:
    root: Path
    config_dir: Path | None
    experiments_dir: Path | None
    allow_targets: tuple[str, ...] = ()

    def search_path(self) -> list[str]:
        """Hydra search-path entries, before extf's own config."""
        entries = [f"file://{self.config_dir}"] if self.config_dir else []
        if self.experiments_dir:
            entries.append(f"{EXPERIMENTS_SCHEME}://{self.experiments_dir}")
        return entries

    def options(self) -> dict[str, Path]:
        """`group/name` -> file of every option the project defines."""
        found = {}
        if self.config_dir:
            for path in sorted(self.config_dir.glob("*/*.yaml")):
                found[f"{path.parent.name}/{path.stem}"] = path
        if self.experiments_dir:
            for path in sorted(self.experiments_dir.glob("*.yaml")):
                found.setdefault(f"{EXPERIMENT_GROUP}/{path.stem}", path)
        return found

    def shadowed(self, base: Path) -> list[str]:
        """One line per project option that has the name of one of extf's own (the project's wins)."""
        return [f"the project's {_shown(path, self.root)} shadows extf's {key.replace('/', '=')}: the project's "
                f"option is used (rename it to keep extf's)"
                for key, path in self.options().items() if (base / f"{key}.yaml").is_file()]

    def activate(self) -> None:
        """The project's folders on Hydra's search path and its packages importable, in this process and the ones
        it starts (sweep jobs, workers)."""
        os.environ[SEARCHPATH_ENV] = "\n".join(self.search_path())
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)  # the `extf` script's sys.path[0] is its bin/ folder, not the project
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [root, *paths] if p)
        register()


def find(cwd: Path, config_dir: str | None = None) -> Project | None:
    """The project in `cwd` (None when it is not one). `config_dir`: from --config-dir, relative to `cwd`."""
    cwd = cwd.resolve()
    settings = read_settings(cwd / PROJECT_FILE)
    if config_dir is not None:
        conf: Path | None = _existing_dir(cwd, config_dir, "--config-dir", config_dir)
    elif settings.get("config_dir") is not None:
        conf = _existing_dir(cwd, str(settings["config_dir"]), f"config_dir in {PROJECT_FILE}",
                             settings["config_dir"])
    else:
        conf = cwd / "conf" if (cwd / "conf").is_dir() else None
    experiments = cwd / "experiments" if (cwd / "experiments").is_dir() else None
    if conf is None and experiments is None and not (cwd / PROJECT_FILE).is_file():
        return None
    if conf is not None and (conf / "config.yaml").is_file():
        raise ConfigError(f"the project's config folder has a config.yaml, which would replace extf's whole base "
                          f"config. Expected only option folders (dataset/, model/, search_space/, ...); put the "
                          f"project's default choices in {_shown(conf, cwd)}/project/default.yaml (see "
                          f"docs/own-project.md). Received: {conf / 'config.yaml'}")
    return Project(cwd, conf, experiments, _allow_targets(settings.get("allow_targets")))


def read_settings(path: Path) -> dict:
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{PROJECT_FILE} is not valid YAML: {' '.join(str(e).split())}. Fix the YAML at that "
                          f"line. Received: {path}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{PROJECT_FILE} must be a mapping of settings ({', '.join(KEYS)}). Received: {data!r}")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) in {PROJECT_FILE}: {', '.join(unknown)}. Expected: {', '.join(KEYS)}; "
                          f"config values go in the project's conf/ or on the command line. "
                          f"Received: {', '.join(f'{k}={data[k]!r}' for k in unknown)}")
    return data


def _allow_targets(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"allow_targets in {PROJECT_FILE} must be a list of package names, e.g. "
                          f"allow_targets: [myproj]. Received: allow_targets={value!r}")
    for name in value:
        if not PACKAGE_NAME.match(name):
            raise ConfigError(f"allow_targets in {PROJECT_FILE} lists {name!r}, which is not a package name. Expected "
                              f"dotted Python names such as myproj or myproj.models. Received: allow_targets={value!r}")
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "builtins":
            raise ConfigError(f"allow_targets in {PROJECT_FILE} opts in the project's own packages; {name!r} is part "
                              f"of Python's standard library, whose callables (os.system, subprocess.run) would let a "
                              f"config run any command. Name your own package. Received: allow_targets={value!r}")
    return tuple(value)


def _existing_dir(cwd: Path, given: str, source: str, shown) -> Path:
    path = (cwd / Path(given).expanduser()).resolve()
    if not path.is_dir():
        raise ConfigError(f"the config folder given by {source} does not exist. Expected a folder of option folders "
                          f"(dataset/, model/, ...) such as conf/; create it or fix the path. Received: "
                          f"{source.split()[0]}={shown!r} ({path})")
    return path


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def split_config_dir(args: list[str]) -> tuple[str | None, list[str]]:
    """`--config-dir DIR` / `--config-dir=DIR` / `-cd DIR` taken out of a command line (extf's, not Hydra's: the
    project's folder goes before extf's config on the search path)."""
    rest, found = [], None
    it = iter(args)
    for a in it:
        if a in ("--config-dir", "-cd"):
            found = next(it, "")
        elif a.startswith("--config-dir="):
            found = a.split("=", 1)[1]
        else:
            rest.append(a)
    if found == "":
        raise ConfigError("--config-dir needs a folder. Expected --config-dir DIR (the project's config folder). "
                          "Received: --config-dir with no value")
    return found, rest


def register() -> None:
    """Let Hydra see the project's search path (a public plugin registration: Plugins.register)."""
    plugins = Plugins.instance()
    plugins.register(ProjectSearchPath)
    plugins.register(ExperimentsFolder)


class ProjectSearchPath(SearchPathPlugin):
    """The project's entries (from $EXTF_PROJECT_SEARCHPATH) before extf's own config ("main")."""

    def manipulate_search_path(self, search_path) -> None:
        entries = [e for e in os.environ.get(SEARCHPATH_ENV, "").split("\n") if e]
        for entry in entries:
            search_path.prepend(provider="extf-project", path=entry, anchor="main")


class ExperimentsFolder(ConfigSource):
    """A project's experiments/ folder as the `experiment` config group (experiments/NAME.yaml is experiment=NAME)."""

    @staticmethod
    def scheme() -> str:
        return EXPERIMENTS_SCHEME

    def _file(self, config_path: str) -> str | None:
        """The file or folder of `config_path` in this source, or None when it is outside the group."""
        config_path = config_path.strip("/")
        if config_path in ("", EXPERIMENT_GROUP):
            return self.path
        if config_path.startswith(EXPERIMENT_GROUP + "/"):
            return os.path.join(self.path, config_path[len(EXPERIMENT_GROUP) + 1:])
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf

        path = self._file(self._normalize_file_name(config_path))
        if path is None or not os.path.isfile(path):
            raise ConfigLoadError(f"Config not found : {config_path}")
        with open(path, encoding="utf-8") as f:
            header = ConfigSource._get_header_dict(f.read(512))
            f.seek(0)
            return ConfigResult(config=OmegaConf.load(f), path=f"{self.scheme()}://{self.path}",
                                provider=self.provider, header=header)

    def available(self) -> bool:
        return os.path.isdir(self.path)

    def is_group(self, config_path: str) -> bool:
        path = self._file(config_path)
        return path is not None and os.path.isdir(path)

    def is_config(self, config_path: str) -> bool:
        if config_path.strip("/") in ("", EXPERIMENT_GROUP):
            return False
        path = self._file(self._normalize_file_name(config_path))
        return path is not None and os.path.isfile(path)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        config_path = config_path.strip("/")
        if config_path == "":
            return [EXPERIMENT_GROUP] if results_filter in (None, ObjectType.GROUP) else []
        path = self._file(config_path)
        files: list[str] = []
        if path is None or not os.path.isdir(path):
            return files
        for name in os.listdir(path):
            self._list_add_result(files=files, file_path=f"{config_path}/{name}", file_name=name,
                                  results_filter=results_filter)
        return sorted(set(files))
