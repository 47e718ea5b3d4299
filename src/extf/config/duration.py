"""Durations in config values: `tuner.time_budget=90`, `"30m"`, `"2h"`."""

from __future__ import annotations

import re

from extf.errors import ConfigError

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value, key: str = "tuner.time_budget") -> float | None:
    """Seconds from 90, "90s", "30m", "2h", "1.5h", "1d"; None (or "none") for no budget."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value).lower())
        seconds = float(match.group(1)) * UNITS[match.group(2)] if match else None
    if seconds is None or seconds <= 0:
        raise ConfigError(f"{key} must be a positive duration: seconds (e.g. 600) or a number with a unit s, m, h "
                          f"or d (e.g. 30m, 2h); null for no budget. Received: {key}={value!r}")
    return seconds
