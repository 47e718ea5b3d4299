"""keras-tuner's own oracles (random, bayesian, hyperband, grid) from the tuner config."""

from __future__ import annotations

from extf.errors import ConfigError
from extf.objective import Objective

TUNERS = ("random", "bayesian", "hyperband", "grid")


def check_tuner(cfg, specs) -> None:
    """What the chosen oracle needs of the config and the space."""
    t = cfg.tuner
    if t.name not in TUNERS:
        raise ConfigError(f"Unknown tuner {t.name!r}. Expected one of: {', '.join(TUNERS)}. "
                          f"Received: tuner.name={t.name!r}")
    if t.name == "grid":
        for spec in specs:
            if spec.type == "float" and not spec.args.get("step"):
                raise ConfigError(f"tuner=grid needs a finite grid: search_space.{spec.path} is a continuous float. "
                                  f"Give it a `step` or make it a choice. Received: {spec.args}")
    if t.name == "hyperband" and t.factor < 2:
        raise ConfigError(f"tuner.factor must be an integer >= 2 (hyperband keeps 1/factor of the trials per "
                          f"round). Received: tuner.factor={t.factor}")


def make_oracle(cfg, specs, objective: Objective):
    """The oracle of tuner.name over the space `specs`, scoring `objective`."""
    import keras_tuner as kt

    from extf.tuning.space import declare

    check_tuner(cfg, specs)
    t = cfg.tuner
    common = {"objective": kt.Objective(objective.name, direction=objective.direction),
              "hyperparameters": declare(specs), "tune_new_entries": False,
              "seed": t.seed if t.seed is not None else cfg.seed, "max_retries_per_trial": t.max_retries_per_trial,
              "max_consecutive_failed_trials": t.max_consecutive_failed_trials}
    if t.name == "random":
        return kt.oracles.RandomSearchOracle(max_trials=t.max_trials, **common)
    if t.name == "grid":
        return kt.oracles.GridSearchOracle(max_trials=t.max_trials, **common)
    if t.name == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=t.max_trials, num_initial_points=t.num_initial_points,
                                                     alpha=t.alpha, beta=t.beta, **common)
    oracle = kt.oracles.HyperbandOracle(max_epochs=t.max_epochs or cfg.trainer.epochs, factor=t.factor,
                                        hyperband_iterations=t.hyperband_iterations, **common)
    oracle.max_trials = t.max_trials  # the base Oracle stops creating trials past this cap
    return oracle
