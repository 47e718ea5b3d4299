"""The `_target_` allowlist: which callables a config may name (DESIGN.md, Security).

A target must be named under keras.*, extf.*, sklearn.* or a package the project's extf.yaml opts in
(`allow_targets`), and the object it resolves to must be *defined* there: a module's imports
(`extf.cli.os.system`) must not reach callables outside it. No TensorFlow here.
"""

from __future__ import annotations

from typing import Any

from extf.errors import ConfigError

# `_target_` may only name callables from these packages, and from the ones a project's extf.yaml opts in with
# `allow_targets` (see DESIGN.md, Security).
TARGET_ALLOWLIST = ("keras.", "extf.", "sklearn.")


def allowed_prefixes(allow_targets=()) -> tuple[str, ...]:
    """extf's allowlist and the packages the project opts in (cfg.allow_targets, from its extf.yaml)."""
    return TARGET_ALLOWLIST + tuple(f"{p}." for p in allow_targets)


def outside_allowlist(key: str, value: Any, allow_targets=()) -> str:
    """The message for a target outside the allowlist."""
    allowed = ", ".join(p + "*" for p in allowed_prefixes(allow_targets))
    return (f"`{key}` names a callable outside the allowlist. Only targets under {allowed} may be instantiated "
            f"from a config; to run your project's own code, list its package in allow_targets in the project's "
            f"extf.yaml (allow_targets: [myproj]). Received: {key}={value!r}")



def check_defined_in_allowlist(key: str, target: Any, allow_targets=()) -> None:
    """The target's name must be under the allowlist, and so must the module that defines the object it resolves
    to: a module's imports (`extf.cli.os.system`) must not reach callables outside it."""
    import inspect

    prefixes = allowed_prefixes(allow_targets)
    if not isinstance(target, str) or not target.startswith(prefixes):
        raise ConfigError(outside_allowlist(key, target, allow_targets))
    try:
        obj = _locate(target)
    except ImportError:  # a module on the path failed to import: Hydra's own error, with the key, comes later
        return
    except AttributeError:
        raise ConfigError(f"`{key}` names nothing that can be imported: {target!r} is not a module, class or "
                          f"function. Name a callable where it is defined, e.g. keras.callbacks.EarlyStopping. "
                          f"Received: {key}={target!r}") from None
    module = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
    if not (isinstance(module, str) and f"{module}.".startswith(prefixes)):
        allowed = ", ".join(p + "*" for p in prefixes)
        raise ConfigError(f"`{key}` resolves to {getattr(obj, '__qualname__', obj)!s} from module {module!r}, "
                          f"outside the allowlist: only callables defined under {allowed} may be instantiated from "
                          f"a config. Name the callable where it is defined. Received: {key}={target!r}")


def _locate(path: str) -> Any:
    """The object a dotted path names: the longest importable module prefix, then attributes. Unlike Hydra's
    `_locate`, a module reached as an attribute (`keras.src.utils.io_utils.os`) is followed, so what it resolves
    to can be checked. AttributeError when nothing of that name exists."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as e:
            if e.name and not ".".join(parts[:cut]).startswith(e.name):
                raise ImportError(str(e)) from e  # the module exists but one of its own imports is missing
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AttributeError(path)
