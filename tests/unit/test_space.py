"""Search-space specs are checked before any trial; hyperparameters land at their config paths."""

from __future__ import annotations

import pytest

from extf.errors import ConfigError
from extf.tuning.space import apply_hyperparameters, declare, parse_space


@pytest.mark.parametrize("spec, needle", [
    ({"model.unitz": {"type": "int", "low": 1, "high": 4}}, "search_space.model.unitz"),
    ({"model.units": {"type": "int", "low": 8, "high": 4}}, "low must be <= high"),
    ({"model.units": {"type": "integer", "low": 1, "high": 4}}, "type must be one of"),
    ({"model.activation": {"type": "choice", "values": []}}, "non-empty list"),
    ({"optimizer.learning_rate": {"type": "float", "low": 0, "high": 1, "sampling": "log"}}, "needs low > 0"),
    ({"model.units": {"type": "int", "low": 1, "high": 4, "stepp": 2}}, "unknown key"),
    ({"model.units": {"type": "int", "low": 1, "high": 4, "when": {"model.num_layers": [2]}}}, "not itself in"),
])
def test_bad_specs_fail_naming_the_key(make_cfg, spec, needle):
    cfg = make_cfg(["model=mlp"])
    with pytest.raises(ConfigError, match="Received") as info:
        parse_space(spec, cfg)
    assert needle in str(info.value)


def test_space_declares_and_applies(make_cfg):
    """Mutation check (2026-12-01): apply_hyperparameters writing into `cfg` instead of a copy fails the last
    assert; skipping its OmegaConf.update fails the one before."""
    cfg = make_cfg(["model=mlp"])
    specs = parse_space({
        "model.units": {"type": "int", "low": 32, "high": 64, "step": 32},
        "model.num_layers": {"type": "int", "low": 1, "high": 2},
        "model.dropout": {"type": "float", "low": 0.1, "high": 0.2, "when": {"model.num_layers": [2]}},
        "optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "sampling": "log"},
        "model.batch_norm": {"type": "bool"},
        "model.activation": {"type": "choice", "values": ["relu", "tanh"]},
        "trainer.batch_size": {"type": "fixed", "value": 16},
    }, cfg)
    assert specs[-1].path == "model.dropout"  # conditional parameters come after their parents
    hp = declare(specs)
    assert set(hp.values) >= {"model.units", "optimizer.learning_rate", "trainer.batch_size"}
    before = (cfg.model.units, cfg.trainer.batch_size)
    assert before[0] != 32 and before[1] != 16  # so the checks below see whether the trial's values landed
    out = apply_hyperparameters(cfg, {"model.units": 32, "trainer.batch_size": 16})
    assert (out.model.units, out.trainer.batch_size) == (32, 16)
    assert (cfg.model.units, cfg.trainer.batch_size) == before  # a trial's config is a copy: the study's stays
