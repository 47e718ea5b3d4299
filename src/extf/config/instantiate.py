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
    try:
        return hydra.utils.instantiate({**spec, **overrides}, _convert_="all")
    except Exception as e:  # hydra wraps import and call errors in InstantiationException
        cause = e.__cause__ or e
        raise ConfigError(f"Could not create `{where}` from {target}: {cause}. Check the argument names and values "
                          f"of `{where}` against {target}'s documentation. Received: "
                          f"{ {k: v for k, v in spec.items() if k != '_target_'} }") from None
