"""The study's oracle from the tuner config: keras-tuner's own (random, bayesian, hyperband, grid) or Optuna's
samplers behind keras-tuner's interface (tpe, cmaes, nsga2), with the search policies mixed in (pruning, a time
budget). What a tuner needs of the config and the space (tuner.factor, a finite grid, ...) is checked with the
config (extf.config.schema, extf.config.validate), before any data is read."""

from __future__ import annotations

import time

from extf.objective import Objective


def make_oracle(cfg, specs, objective: Objective, goals=(), started: float | None = None):
    """The oracle of tuner.name over the space `specs`, scoring `objective`; `goals` (extf.config.objectives.Goal,
    the first is `objective`): what nsga2 searches; `started`: the study's start (time.time()), from which a time
    budget counts."""
    import keras_tuner as kt

    from extf.tuning.space import declare

    t = cfg.tuner
    common = {"objective": kt.Objective(objective.name, direction=objective.direction),
              "hyperparameters": declare(specs), "tune_new_entries": False,
              "seed": oracle_seed(cfg), "max_retries_per_trial": t.max_retries_per_trial,
              "max_consecutive_failed_trials": t.max_consecutive_failed_trials}
    policies = _policies(t, objective, started)
    if t.name in ("tpe", "cmaes", "nsga2"):
        from extf.tuning.optuna_oracle import MULTI_OBJECTIVE, OptunaOracle

        return _with(OptunaOracle, policies)(sampler=t.name, num_initial_points=t.get("num_initial_points"),
                                             goals=list(goals) if t.name in MULTI_OBJECTIVE else None,
                                             max_trials=t.max_trials, **common, **policies)
    if t.name == "random":
        return _with(kt.oracles.RandomSearchOracle, policies)(max_trials=t.max_trials, **common, **policies)
    if t.name == "grid":
        return kt.oracles.GridSearchOracle(max_trials=t.max_trials, **common)
    if t.name == "bayesian":
        return _with(kt.oracles.BayesianOptimizationOracle, policies)(
            max_trials=t.max_trials, num_initial_points=t.num_initial_points, alpha=t.alpha, beta=t.beta, **common,
            **policies)
    oracle = kt.oracles.HyperbandOracle(max_epochs=t.max_epochs or cfg.trainer.epochs, factor=t.factor,
                                        hyperband_iterations=t.hyperband_iterations, **common)
    oracle.max_trials = t.max_trials  # the base Oracle stops creating trials past this cap
    return oracle


def oracle_seed(cfg) -> int:
    """The oracle's seed: a hash of the study seed (tuner.seed, else seed) and the tuner's name (extf.tuning.seeds)."""
    from extf.tuning.seeds import derived_seed

    t = cfg.tuner
    return derived_seed(t.seed if t.seed is not None else cfg.seed, t.name)


def has_policies(cfg) -> bool:
    """Whether the oracle stops trials at an epoch (pruning, a time budget): the trials then report every epoch."""
    t = cfg.tuner
    return t.get("pruning", "none") != "none" or t.get("time_budget") is not None


def _policies(t, objective: Objective, started: float | None = None) -> dict:
    from extf.config.duration import parse_duration
    from extf.tuning.pruning import PruningRule

    policies = {}
    if t.get("pruning", "none") != "none":
        policies["pruning"] = PruningRule(t.pruning, objective.direction, warmup_epochs=t.pruning_warmup_epochs,
                                          min_trials=t.pruning_min_trials, factor=t.pruning_factor)
    if t.get("time_budget") is not None:
        policies["time_budget"] = parse_duration(t.time_budget)
        policies["elapsed"] = 0.0 if started is None else time.time() - started
    return policies


def _with(oracle_class: type, policies: dict) -> type:
    from extf.tuning.budget import with_budget
    from extf.tuning.pruning import with_pruning

    if "pruning" in policies:
        oracle_class = with_pruning(oracle_class)
    if "time_budget" in policies:
        oracle_class = with_budget(oracle_class)
    return oracle_class
