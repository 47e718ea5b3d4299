"""Instantiate `_target_` specs from the allowlist only, with errors that name the config key; call a project's own
functions with errors that name the function and show its own traceback frames."""

from __future__ import annotations

from typing import Any

from extf.config.allowlist import allowed_prefixes, check_defined_in_allowlist, outside_allowlist
from extf.errors import ConfigError, UserCodeError

__all__ = ["call_user", "check_defined_in_allowlist", "check_project_module", "instantiate", "resolve", "user_error"]


def instantiate(spec: dict[str, Any], where: str, allow_targets=(), **overrides: Any) -> Any:
    """Call `spec['_target_']` with the other keys (and `overrides`) as keyword arguments. `allow_targets`: the
    project's opted-in packages (cfg.allow_targets)."""
    import hydra.utils

    target = spec.get("_target_")
    if not isinstance(target, str) or not target.startswith(allowed_prefixes(allow_targets)):
        raise ConfigError(outside_allowlist(f"{where}._target_", target, allow_targets))
    for key, value in _targets(spec, where):
        check_defined_in_allowlist(key, value, allow_targets)
    if not target.startswith(allowed_prefixes()):  # the project's own code: its errors are its own
        fn = resolve(target, f"{where}._target_", allow_targets)
        kwargs = {k: v for k, v in {**spec, **overrides}.items() if k != "_target_"}
        return call_user(fn, target, f"{where}._target_", **kwargs)
    try:
        return hydra.utils.instantiate({**spec, **overrides}, _convert_="all")
    except Exception as e:  # hydra wraps import and call errors in InstantiationException
        cause = e.__cause__ or e
        raise ConfigError(f"Could not create `{where}` from {target}: {cause}. Check the argument names and values "
                          f"of `{where}` against {target}'s documentation. Received: "
                          f"{ {k: v for k, v in spec.items() if k != '_target_'} }") from None


def _targets(node: Any, path: str):
    """(dotted key, value) of every `_target_` in a spec, nested ones included (Hydra instantiates those too)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "_target_":
                yield f"{path}._target_", v
            else:
                yield from _targets(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _targets(v, f"{path}[{i}]")


def resolve(target: str, key: str, allow_targets=()):
    """The project's callable `target` (imported; checked where it is defined)."""
    if not target.startswith(allowed_prefixes(allow_targets)):  # nothing outside the allowlist is imported
        raise ConfigError(outside_allowlist(key, target, allow_targets))
    module_name, _, name = target.rpartition(".")
    module = import_project_module(module_name, key, target)
    check_defined_in_allowlist(key, target, allow_targets)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"`{key}` names {target}, but {module_name} has no function {name!r}. Expected a callable "
                          f"defined in {module_name}. Received: {key}={target!r}")
    return fn


def import_project_module(module_name: str, key: str, given: str):
    """Import a project's module for the config value `key`=`given`: a module that cannot be found is a
    ConfigError naming the key; an error raised by the module's own code is the project's (UserCodeError)."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if not missing or module_name == missing or module_name.startswith(missing + "."):
            raise ConfigError(_not_importable(key, given, module_name, str(e))) from None
        raise user_error(e, given, key, f"importing {module_name}") from e
    except Exception as e:  # the module itself raised while importing
        raise user_error(e, given, key, f"importing {module_name}") from e


def _not_importable(key: str, given: str, module_name: str, detail: str) -> str:
    return (f"`{key}` names {given}, but its module {module_name!r} cannot be imported ({detail}). Expected a module "
            f"of the project (run extf in the project's folder, which holds the package) or an installed one. "
            f"Received: {key}={given!r}")


def check_project_module(key: str, target: str) -> None:
    """The module of a project's `_target_` (the one `resolve` imports) can be found, found without running any of
    the project's code: a misspelt module is one message when the config is validated, not once TensorFlow (or
    the model's first trial) is reached."""
    module_name = target.rpartition(".")[0]
    if module_name and not _findable(module_name):
        raise ConfigError(_not_importable(key, target, module_name, f"No module named {module_name!r}"))


def _findable(module_name: str) -> bool:
    """Whether `module_name` can be imported, as far as can be told without importing it: its top-level package
    is looked up, then each submodule in its parent's folders (no package's __init__ runs). Only a module so not
    found is looked up the usual way (which imports its parents): a package may extend its own __path__."""
    import importlib.util
    import sys
    from importlib.machinery import PathFinder

    parts = module_name.split(".")
    try:
        spec = sys.modules.get(parts[0]).__spec__ if parts[0] in sys.modules else importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                break
            spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
        else:
            if spec is not None:
                return True
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False
    except Exception:  # the project's package failed to import: importing the module says so, with its frames
        return True


def call_user(fn, target: str, key: str, *args, **kwargs):
    """fn(*args, **kwargs); an exception becomes one UserCodeError naming the function, with its own frames."""
    try:
        return fn(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        raise user_error(e, target, key, f"calling {target}") from e


def user_error(e: BaseException, target: str, key: str, doing: str) -> UserCodeError:
    """The error of a project's function: what failed, the function's own traceback frames (not extf's, not the
    libraries' it called), how to see everything."""
    import sys
    import traceback
    from pathlib import Path

    top = target.split(".")[0]
    module = sys.modules.get(top)
    home = None  # the folder of the target's top-level package (or its module file)
    if module is not None and getattr(module, "__path__", None):
        home = Path(list(module.__path__)[0]).resolve()
    elif module is not None and getattr(module, "__file__", None):
        home = Path(module.__file__).resolve()

    def own(filename: str) -> bool:
        if home is None:
            return False
        path = Path(filename).resolve()
        return path == home or home in path.parents

    frames = [f for f in traceback.extract_tb(e.__traceback__) if own(f.filename)]
    shown = "".join(traceback.format_list(frames)).rstrip()
    where = f"\n{shown}\n" if shown else " "
    message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return UserCodeError(f"the project's {target} ({key}) failed while {doing}: {message}{where}Fix it in "
                          f"{target} (EXTF_DEBUG=1 shows the whole traceback). Received: {key}={target!r}")
