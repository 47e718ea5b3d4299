"""Instantiate `_target_` specs from the allowlist only, with errors that name the config key."""

from __future__ import annotations

from typing import Any

from extf.config.validate import TARGET_ALLOWLIST
from extf.errors import ConfigError


def instantiate(spec: dict[str, Any], where: str, **overrides: Any) -> Any:
    """Call `spec['_target_']` with the other keys (and `overrides`) as keyword arguments."""
    import hydra.utils

    target = spec.get("_target_")
    if not isinstance(target, str) or not target.startswith(TARGET_ALLOWLIST):
        raise ConfigError(f"`{where}._target_` names a callable outside the allowlist. Only targets under "
                          f"{', '.join(p + '*' for p in TARGET_ALLOWLIST)} may be instantiated from a config. "
                          f"Received: {where}._target_={target!r}")
    for key, value in _targets(spec, where):
        check_defined_in_allowlist(key, value)
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


def check_defined_in_allowlist(key: str, target: Any) -> None:
    """The target's name must be under the allowlist, and so must the module that defines the object it resolves
    to: a module's imports (`extf.cli.os.system`) must not reach callables outside it."""
    import inspect

    allowed = ", ".join(p + "*" for p in TARGET_ALLOWLIST)
    if not isinstance(target, str) or not target.startswith(TARGET_ALLOWLIST):
        raise ConfigError(f"`{key}` names a callable outside the allowlist. Only targets under {allowed} may be "
                          f"instantiated from a config. Received: {key}={target!r}")
    try:
        obj = _locate(target)
    except ImportError:  # a module on the path failed to import: Hydra's own error, with the key, comes later
        return
    except AttributeError:
        raise ConfigError(f"`{key}` names nothing that can be imported: {target!r} is not a module, class or "
                          f"function. Name a callable where it is defined, e.g. keras.callbacks.EarlyStopping. "
                          f"Received: {key}={target!r}") from None
    module = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
    if not (isinstance(module, str) and f"{module}.".startswith(TARGET_ALLOWLIST)):
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
