"""What a study ran on: git commit, package versions, the installed distributions (a pip-freeze equivalent)."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, distributions, version
from pathlib import Path

PACKAGES = ("tensorflow", "keras", "keras-tuner", "mlflow", "hydra-core", "scikit-learn", "numpy", "extf")


def git_commit(directory: Path) -> str:
    """The commit of the checkout `directory` is in (with `-dirty` for uncommitted changes), or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[f"version.{name}"] = version(name)
        except PackageNotFoundError:
            pass
    return out


def freeze() -> str:
    """`name==version` of every installed distribution, sorted (what `pip freeze` lists, without invoking pip)."""
    lines = {f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"]}
    return "\n".join(sorted(lines, key=str.lower)) + "\n"
