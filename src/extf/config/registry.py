"""Where the options of the config groups that are code (model families, datasets) come from.

An option is one module plus one YAML file. The module exports `Conf` (its schema: a dataclass extending
`ModelConf` / `DatasetConf`, with its `constraints` beside the fields) and its code (`build` for a model family,
`load` for a dataset); the YAML file in conf/<group>/ holds the defaults. The YAML's `name` names the module:

- extf's own options are the modules of the group's package (GROUP_PACKAGES): `model=mlp` is `extf.models.mlp`.
  The registry lists them by looking into that package, so a new module there is a new option.
- a project's option names its module with `_module_` in its YAML (`_module_: myproj.toy`): the module must be in a
  package the project's extf.yaml opts in (`allow_targets`), like any `_target_`.

Nothing here imports TensorFlow: option modules import it inside the functions that need it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from extf.config.allowlist import allowed_prefixes, outside_allowlist
from extf.config.instantiate import import_project_module
from extf.errors import ConfigError

# the package of extf's own options, per group (named, not imported: the config layer sits below them)
GROUP_PACKAGES = {"model": "extf.models", "dataset": "extf.data.datasets"}
MODULE_KEY = "_module_"  # a project's option: the module that defines it


def _module_names(group: str) -> list[str]:
    package = importlib.import_module(GROUP_PACKAGES[group])
    return sorted(i.name for i in pkgutil.iter_modules(package.__path__) if not i.name.startswith("_"))


def _builtin(group: str, name: str) -> ModuleType | None:
    """extf's own option `name` of `group` (its module, when that exports a `Conf`), imported only when asked for."""
    if name not in _module_names(group):
        return None
    module = importlib.import_module(f"{GROUP_PACKAGES[group]}.{name}")
    return module if isinstance(getattr(module, "Conf", None), type) else None


@cache
def builtin_options(group: str) -> dict[str, ModuleType]:
    """extf's own options of `group`: name -> module, for every module of the group's package that has a `Conf`."""
    found = {name: _builtin(group, name) for name in _module_names(group)}
    return {name: module for name, module in found.items() if module is not None}


def option_module(group: str, node, allow_targets=()) -> ModuleType:
    """The module that defines the option `node` (a group's config section) names."""
    given = node.get(MODULE_KEY) if hasattr(node, "get") else None
    if given is not None:
        return project_module(group, given, allow_targets)
    name = node.get("name") if hasattr(node, "get") else None
    module = _builtin(group, name) if isinstance(name, str) else None
    if module is None:
        raise ConfigError(f"Unknown {group} name {name!r}. Expected one of: "
                          f"{', '.join(sorted(builtin_options(group)))}. Set `name:` in the {group} YAML file to one "
                          f"of them, or name the module of your project's own {group} with `{MODULE_KEY}: "
                          f"mypackage.module` (docs/extending.md). Received: {group}.name={name!r}")
    return module


def project_module(group: str, given, allow_targets=()) -> ModuleType:
    """A project's option module (`_module_`): allowed, importable and exporting a `Conf`. Only modules are
    imported (not attributes), so the module is where its code is defined."""
    key = f"{group}.{MODULE_KEY}"
    if not isinstance(given, str) or not f"{given}.".startswith(allowed_prefixes(allow_targets)):
        raise ConfigError(outside_allowlist(key, given, allow_targets))
    module = import_project_module(given, key, given)
    if not isinstance(getattr(module, "Conf", None), type):
        raise ConfigError(f"`{key}` names {given}, which has no `Conf`: a {group} module exports its schema as a "
                          f"dataclass named Conf (docs/extending.md). Add it. Received: {key}={given!r}")
    return module
