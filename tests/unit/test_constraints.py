"""Each config key in one place: the YAML file holds its default, the schema its type and constraint, one function
checks the constraints; model families and datasets are the modules the registry finds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pytest
from omegaconf import OmegaConf

from extf.config import registry, schema
from extf.config.constraints import FRACTION, POSITIVE_INT, OneOf, at_least, check_section
from extf.errors import ConfigError
from tests.conftest import CONF


@dataclass
class Section:
    units: int
    dropout: float
    cell: str
    size: int
    constraints: ClassVar = {"units": POSITIVE_INT, "dropout": FRACTION, "cell": OneOf({"gru", "lstm"}),
                             "size": at_least(8, "shapes need room")}


GOOD = {"units": 3, "dropout": 0.5, "cell": "gru", "size": 8}


@pytest.mark.parametrize("bad, needles", [
    ({"units": 0}, ["`model.units` must be a positive integer", "Fix the value", "Received: model.units=0"]),
    ({"dropout": 1.0}, ["`model.dropout` must be a fraction in [0, 1)", "Received: model.dropout=1.0"]),
    ({"dropout": float("nan")}, ["`model.dropout` must be a fraction", "Received: model.dropout=nan"]),
    ({"cell": "rnn"}, ["`model.cell` must be one of: gru, lstm", "Received: model.cell='rnn'"]),
    ({"size": 4}, ["`model.size` must be at least 8: shapes need room", "Received: model.size=4"]),
])
def test_one_function_gives_one_message_per_refused_value(bad, needles):
    check_section(Section, GOOD, "model")  # allowed values pass
    check_section(Section, {**GOOD, "units": None}, "model")  # null is "not set": not checked
    with pytest.raises(ConfigError) as info:
        check_section(Section, {**GOOD, **bad}, "model")
    for needle in needles:
        assert needle in str(info.value)


def test_nested_sections_and_rules_over_several_keys_are_checked():
    tuner = {"name": "hyperband", "max_trials": 1, "executions_per_trial": 1, "objective": {"direction": "up"},
             "factor": 3, "hyperband_iterations": 1}
    with pytest.raises(ConfigError, match=r"`tuner.objective.direction` must be one of: auto, max, min"):
        check_section(schema.TunerConf, tuner, "tuner")
    with pytest.raises(ConfigError, match=r"tuner=hyperband needs tuner.factor.*Received: tuner.factor=None"):
        check_section(schema.TunerConf, {**tuner, "objective": {"direction": "max"}, "factor": None}, "tuner")
    with pytest.raises(ConfigError, match="at least 10% of the data for training"):
        check_section(schema.DatasetConf, {"val_fraction": 0.5, "test_fraction": 0.45}, "dataset")


def yaml_keys(group: str, option: str) -> set[str]:
    node = OmegaConf.load(CONF / group / f"{option}.yaml")
    node = node.get(group, node)  # `# @package _global_` options (nabiya, shapes) put their keys under the group
    return {str(k) for k in node if k != "defaults"}


@pytest.mark.parametrize("group", ["model", "dataset"])
def test_every_option_is_a_module_and_a_yaml_file_with_every_key(group):
    modules = registry.builtin_options(group)
    assert set(modules) == {p.stem for p in (CONF / group).glob("*.yaml")}
    for name, module in modules.items():
        fields = {f.name for f in dataclasses.fields(module.Conf)}
        assert fields == yaml_keys(group, name), name
        assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(module.Conf)), (
            f"{name}: a default in the schema would be a second copy of the YAML's")
        assert callable(getattr(module, "build" if group == "model" else "load")), name


def test_plain_sections_have_no_second_copy_of_the_yaml_defaults():
    for cls in (*schema.SECTIONS.values(), *schema.OPTIMIZERS.values(), schema.TopConf):
        with_default = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
                        or f.default_factory is not dataclasses.MISSING]
        # a tuner's own keys are null (absent) for the other tuners
        assert set(with_default) <= {"num_initial_points", "alpha", "beta", "max_epochs", "factor",
                                     "hyperband_iterations"}, (cls.__name__, with_default)


def test_registry_names_what_is_wrong_with_an_option():
    with pytest.raises(ConfigError, match=r"Unknown model name 'tables'.*Expected one of: autoencoder, cnn.*"
                                          r"`_module_: mypackage.module`.*Received: model.name='tables'"):
        registry.option_module("model", {"name": "tables"})  # a module of extf.models, but no family
    with pytest.raises(ConfigError, match=r"outside the allowlist.*Received: model._module_='os'"):
        registry.option_module("model", {"name": "x", "_module_": "os"}, ("myproj",))
    with pytest.raises(ConfigError, match=r"has no `Conf`.*Received: model._module_='extf.models.tables'"):
        registry.option_module("model", {"name": "x", "_module_": "extf.models.tables"})
