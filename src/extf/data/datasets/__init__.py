"""Datasets: one module per dataset in this package, each with its YAML file in conf/dataset/.

A dataset module exports `Conf` (the schema of its keys and their constraints) and `load(cfg, seed) -> Splits`
(cfg: the validated `dataset` section as a plain dict). The datasets are found from those modules
(`extf.config.registry`); a project adds its own the same way (docs/extending.md), or gives a loader function with
`_target_` (extf.data.user). `load_dataset(cfg, seed)` is cached, so a study loads its data once per process.
No loader touches the network.
"""

from __future__ import annotations

import json
from functools import lru_cache

from extf.config.registry import option_module
from extf.data.splits import Splits
from extf.data.user import load as load_user


def load_dataset(ds_cfg, seed: int, allow_targets=()) -> Splits:
    """Load the dataset a (validated) `dataset` config names and split it; cached per config and seed.
    `allow_targets`: the project's packages, for a dataset of the project's own (`_target_`, `_module_`)."""
    plain = ds_cfg if isinstance(ds_cfg, dict) else _to_dict(ds_cfg)
    return _load_cached(json.dumps(plain, sort_keys=True), int(seed), tuple(allow_targets))


def _to_dict(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


@lru_cache(maxsize=8)
def _load_cached(key: str, seed: int, allow_targets: tuple = ()) -> Splits:
    cfg = json.loads(key)
    if "_target_" in cfg:  # the project's own loader function
        return load_user(cfg, seed, allow_targets)
    return option_module("dataset", cfg, allow_targets).load(cfg, seed)
