"""Every model's search space (picked by `extf tune model=X`) names real config keys and declares in keras-tuner."""

from __future__ import annotations

import pytest

from extf.models import FAMILIES
from extf.tuning.space import apply_hyperparameters, declare, parse_space
from tests.conftest import CONF


def test_every_model_has_a_search_space():
    models = {p.stem for p in (CONF / "model").glob("*.yaml")}
    assert models == set(FAMILIES)
    assert models <= {p.stem for p in (CONF / "search_space").glob("*.yaml")}


@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_search_space_parses_declares_and_applies(make_cfg, model):
    cfg = make_cfg([f"model={model}"], command="tune")
    specs = parse_space(cfg.search_space, cfg)
    assert specs and "optimizer.learning_rate" in {s.path for s in specs}
    hp = declare(specs)
    trial_cfg = apply_hyperparameters(cfg, hp)  # the defaults of every declared hyperparameter
    for spec in specs:
        if hp.is_active(spec.path):
            section, key = spec.path.split(".", 1)
            assert trial_cfg[section][key] == hp.values[spec.path]
