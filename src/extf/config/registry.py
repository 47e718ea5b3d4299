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
from extf.config.instantiate import user_error
from extf.errors import ConfigError

# the package of extf's own options, per group (named, not imported: the config layer sits below them)
GROUP_PACKAGES = {"model": "extf.models", "dataset": "extf.data.datasets"}
MODULE_KEY = "_module_"  # a project's option: the module that defines it


@cache
def builtin_options(group: str) -> dict[str, ModuleType]:
    """extf's own options of `group`: name -> module, for every module of the group's package that has a `Conf`."""
    package = importlib.import_module(GROUP_PACKAGES[group])
    found = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if isinstance(getattr(module, "Conf", None), type):
            found[info.name] = module
    return found


def option_module(group: str, node, allow_targets=()) -> ModuleType:
    """The module that defines the option `node` (a group's config section) names."""
    given = node.get(MODULE_KEY) if hasattr(node, "get") else None
    if given is not None:
        return project_module(group, given, allow_targets)
    options = builtin_options(group)
    name = node.get("name") if hasattr(node, "get") else None
    if name not in options:
        raise ConfigError(f"Unknown {group} name {name!r}. Expected one of: {', '.join(sorted(options))}. Set "
                          f"`name:` in the {group} YAML file to one of them, or name the module of your project's "
                          f"own {group} with `{MODULE_KEY}: mypackage.module` (docs/extending.md). "
                          f"Received: {group}.name={name!r}")
    return options[name]


def project_module(group: str, given, allow_targets=()) -> ModuleType:
    """A project's option module (`_module_`): allowed, importable and exporting a `Conf`. Only modules are
    imported (not attributes), so the module is where its code is defined."""
    key = f"{group}.{MODULE_KEY}"
    if not isinstance(given, str) or not f"{given}.".startswith(allowed_prefixes(allow_targets)):
        raise ConfigError(outside_allowlist(key, given, allow_targets))
    try:
        module = importlib.import_module(given)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if not missing or given == missing or given.startswith(missing + "."):
            raise ConfigError(f"`{key}` names {given}, which cannot be imported ({e}). Expected a module of the "
                              f"project (run extf in the project's folder, which holds the package). "
                              f"Received: {key}={given!r}") from None
        raise user_error(e, given, key, f"importing {given}") from e
    except Exception as e:  # the module itself raised while importing
        raise user_error(e, given, key, f"importing {given}") from e
    if not isinstance(getattr(module, "Conf", None), type):
        raise ConfigError(f"`{key}` names {given}, which has no `Conf`: a {group} module exports its schema as a "
                          f"dataclass named Conf (docs/extending.md). Add it. Received: {key}={given!r}")
    return module
