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


L2_SPACE = "+search_space.model.l2={type: float, low: 1.0e-5, high: 1.0e-1, sampling: log}"


@pytest.mark.parametrize("overrides, refused", [
    (["dataset=iris", "model=mlp", "tuner.objective.name=val_loss"], True),
    (["dataset=iris", "model=mlp", "tuner.objectives=[val_accuracy,val_loss]"], True),
    (["dataset=sine", "model=rnn"], True),  # a regression: auto is val_loss
    (["dataset=iris", "model=mlp"], False),  # classification: auto is val_accuracy
    (["dataset=iris", "model=mlp", "model.metrics=[accuracy,sparse_categorical_crossentropy]",
      "tuner.objective.name=val_sparse_categorical_crossentropy"], False),
    (["dataset=sine", "model=rnn", "model.metrics=[mse]", "tuner.objective.name=val_mse"], False),
])
def test_searching_l2_on_val_loss_is_refused(make_cfg, overrides, refused):
    from extf.errors import ConfigError
    from extf.tuning.prepare import check_search

    cfg = make_cfg([*overrides, L2_SPACE], command="tune")
    if refused:
        with pytest.raises(ConfigError, match="prefer the smallest l2.*Received: objectives") as e:
            check_search(cfg)
        assert "val_loss" in str(e.value)
    else:
        assert any(s.path == "model.l2" for s in check_search(cfg).space)
