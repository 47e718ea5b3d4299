"""Seeds of the samplers, derived from the study seed through a hash.

keras-tuner's seeded random draws advance the seed by one per hyperparameter, so two studies whose seeds differ by
the number of hyperparameters would repeat each other's trials shifted by one (default CNN space, 6 hyperparameters:
seed 7's trials 1-9 were seed 1's trials 2-10). Hashing the study seed (with the tuner's name) gives each study
seed an unrelated sampler seed; the same study seed still gives the same trials.
"""

from __future__ import annotations

import hashlib


def derived_seed(seed: int | None, *salt) -> int | None:
    """A 31-bit seed from the study seed and a salt, through SHA-256: nearby study seeds give unrelated draws."""
    if seed is None:
        return None
    digest = hashlib.sha256(repr((int(seed), *salt)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1
