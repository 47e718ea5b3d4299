"""A stateful model of any family (extf's RNN, a project's own with a `stateful` key) gets what a stateful model
needs: a batch size that divides every split, its training batches in order, its states reset each epoch."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from extf.errors import ConfigError
from extf.tuning import trial


def config(model: dict, batch_size: int = 4):
    return OmegaConf.create({"model": model, "seed": 3,
                             "trainer": {"batch_size": batch_size, "shuffle": True, "epochs": 2, "verbosity": 0}})


class Split:
    def __init__(self, n: int):
        self.n, self.asked = n, []

    def __len__(self):
        return self.n

    def dataset(self, batch_size, shuffle=False, seed=None):
        self.asked.append({"batch_size": batch_size, "shuffle": shuffle})
        return f"batches of {self.n}"

    def read_errors(self, hint):
        return contextlib.nullcontext()


def splits(train=12, val=4, test=4):
    return SimpleNamespace(train=Split(train), val=Split(val), test=Split(test))


class Model:
    def fit(self, *args, **kwargs):
        self.kwargs = kwargs
        return "history"


@pytest.mark.parametrize("name", ["rnn", "my_stateful_tcn"])
def test_a_stateful_family_must_have_a_batch_size_that_divides_every_split(name):
    with pytest.raises(ConfigError, match=r"trainer.batch_size must divide.*Received: trainer.batch_size=5"):
        trial.check_stateful_batches(config({"name": name, "stateful": True}, batch_size=5), splits())
    trial.check_stateful_batches(config({"name": name, "stateful": True}, batch_size=4), splits())
    trial.check_stateful_batches(config({"name": name, "stateful": False}, batch_size=5), splits())
    trial.check_stateful_batches(config({"name": name}, batch_size=5), splits())  # no stateful key: not stateful


@pytest.mark.parametrize("name", ["rnn", "my_stateful_tcn"])
def test_a_stateful_family_trains_in_order_and_its_states_are_reset(name, monkeypatch):
    monkeypatch.setattr(trial.StateResetter, "create", staticmethod(lambda: "state resetter"))
    data, model = splits(), Model()
    trial.fit(model, config({"name": name, "stateful": True}), data, ["callback"])
    assert data.train.asked == [{"batch_size": 4, "shuffle": False}]
    assert model.kwargs["callbacks"] == ["callback", "state resetter"]


def test_a_model_without_state_is_shuffled_and_gets_no_resetter(monkeypatch):
    monkeypatch.setattr(trial.StateResetter, "create", staticmethod(lambda: "state resetter"))
    data, model = splits(), Model()
    trial.fit(model, config({"name": "my_stateful_tcn", "stateful": False}), data, ["callback"])
    assert data.train.asked == [{"batch_size": 4, "shuffle": True}]
    assert model.kwargs["callbacks"] == ["callback"]
