"""Every committed study recipe in conf/experiment/ composes and runs one short trial."""

from __future__ import annotations

import io

import pytest

from tests.conftest import CONF

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
REQUIRED = {"digits_cnn_hyperband", "digits_mlp_grid", "iris_mlp_bayesian", "breast_cancer_mlp_random",
            "sine_rnn_random", "nabiya_lstm_stateful"}


def test_required_experiments_exist():
    assert REQUIRED <= set(EXPERIMENTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_one_short_trial(make_cfg, name):
    from extf.tuning.study import Study

    cfg = make_cfg([f"experiment={name}", "tuner.max_trials=1", "trainer.epochs=1", "++tuner.max_epochs=2",
                    "tracking=none"], command="tune")
    assert cfg.experiment_name == name
    out = io.StringIO()
    summary = Study(cfg, out=out).run()
    assert "[trial 1/1]" in out.getvalue()
    assert any(k.startswith("test_") for k in summary["test_metrics"])
