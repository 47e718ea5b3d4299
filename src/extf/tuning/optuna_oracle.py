"""Optuna's samplers as a keras-tuner oracle: `tuner=tpe` (Tree-structured Parzen Estimator) and `tuner=cmaes`.

keras-tuner stays the engine: trials, their files, resume, the distributed chief and the MLflow logging do not
change; only the choice of the next hyperparameters comes from an in-memory Optuna study, through its ask-and-tell
interface. `populate_space` asks Optuna for a trial and suggests the active hyperparameters in keras-tuner's order
(so a conditional parameter exists only while its parent has one of its values, as Optuna's define-by-run spaces
expect); `end_trial` tells Optuna the trial's score (keras-tuner's best value of the objective) or that it failed.

The search space maps to Optuna's distributions: Int -> IntDistribution (step, log), Float -> FloatDistribution
(step, log), Choice and Boolean -> CategoricalDistribution, Fixed -> not searched. A parameter Optuna has no
distribution for (keras-tuner's reverse_log sampling, or a log scale with a step) is searched as keras-tuner's own
cumulative probability in [0, 1) and mapped back with `prob_to_value`, keras-tuner's own rule.

The Optuna study is not saved: keras-tuner saves every trial, and on resume the oracle tells a fresh Optuna study
every ended trial again, in the order they ended, before it asks for the next one. The sampler's seed is derived from
the study seed and the number of ended trials, so a resumed study does not draw its first trials again.
"""

from __future__ import annotations

import math
import warnings

import keras_tuner as kt
from keras_tuner.engine import hyperparameters as kt_hp
from keras_tuner.engine import trial as kt_trial

from extf.tuning.seeds import derived_seed

SAMPLERS = ("tpe", "cmaes", "nsga2")
MULTI_OBJECTIVE = ("nsga2",)
PROB = "#prob"  # suffix of a parameter searched as keras-tuner's cumulative probability


def distribution(hp):
    """The Optuna distribution of a keras-tuner hyperparameter; None: searched as a probability (or not at all)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(hp, kt_hp.Boolean):
        return CategoricalDistribution([False, True])
    if isinstance(hp, kt_hp.Choice):
        return CategoricalDistribution(list(hp.values))
    if isinstance(hp, kt_hp.Int):
        step = hp.step or 1
        if hp.sampling == "linear":
            return IntDistribution(hp.min_value, hp.max_value, step=step)
        if hp.sampling == "log" and step == 1:
            return IntDistribution(hp.min_value, hp.max_value, log=True)
        return None
    if isinstance(hp, kt_hp.Float):
        if hp.sampling == "linear":
            return FloatDistribution(hp.min_value, hp.max_value, step=hp.step)
        if hp.sampling == "log" and hp.step is None:
            return FloatDistribution(hp.min_value, hp.max_value, log=True)
        return None
    return None


class OptunaOracle(kt.Oracle):
    """A keras-tuner oracle whose next hyperparameters come from an Optuna sampler (ask-and-tell)."""

    def __init__(self, sampler: str = "tpe", num_initial_points: int | None = None, goals: list | None = None,
                 **kwargs):
        """`goals`: for nsga2, the objectives (extf.tuning.pareto.Goal: name, direction) Optuna is told, in order;
        keras-tuner's own `objective` (its score, its best trial) is the first of them."""
        super().__init__(**kwargs)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}. Received: sampler={sampler!r}")
        if (sampler in MULTI_OBJECTIVE) != (goals is not None and len(goals) > 1):
            raise ValueError(f"sampler {sampler!r} {'needs' if sampler in MULTI_OBJECTIVE else 'takes no'} several "
                             f"objectives. Received: goals={goals!r}")
        self.sampler = sampler
        self.goals = list(goals or [])
        self.num_initial_points = num_initial_points
        self._study = None
        self._asked: dict[str, object] = {}  # trial_id -> the Optuna trial asked for it (this process only)

    # ------------------------------------------------------------------ the Optuna study
    def _optuna_study(self):
        if self._study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            if self.goals:
                directions = ["maximize" if g.direction == "max" else "minimize" for g in self.goals]
                self._study = optuna.create_study(sampler=self._make_sampler(), directions=directions)
            else:
                self._study = optuna.create_study(sampler=self._make_sampler(), direction=self._direction())
            for trial_id in self.end_order:  # a resumed study: what keras-tuner saved, told again
                self._tell_ended(self.trials[trial_id])
        return self._study

    def _make_sampler(self):
        import optuna

        seed = derived_seed(self.seed, self.sampler, len(self.end_order))
        startup = {} if self.num_initial_points is None else {"n_startup_trials": int(self.num_initial_points)}
        if self.sampler == "nsga2":
            population = {} if self.num_initial_points is None else {"population_size": int(self.num_initial_points)}
            return optuna.samplers.NSGAIISampler(seed=seed, **population)
        if self.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                                                **startup)
        with warnings.catch_warnings():  # `group` (conditional spaces sampled jointly) is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, **startup)

    def _direction(self) -> str:
        return "maximize" if self.objective.direction == "max" else "minimize"

    # ------------------------------------------------------------------ keras-tuner's oracle interface
    def populate_space(self, trial_id):
        study = self._optuna_study()
        for _ in range(self._max_collisions + 1):
            asked = study.ask()
            values = self._suggest(asked)
            if not self._duplicate(values):
                self._asked[trial_id] = asked
                return {"status": kt_trial.TrialStatus.RUNNING, "values": values}
            self._tell(asked, self._trial_with(values))  # Optuna learns the duplicate's score and draws again
        return {"status": kt_trial.TrialStatus.STOPPED, "values": None}  # the space is exhausted

    def _suggest(self, asked) -> dict:
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if not hps.is_active(hp):
                continue
            if isinstance(hp, kt_hp.Fixed):
                hps.values[hp.name] = hp.value
                continue
            dist = distribution(hp)
            if dist is None:
                hps.values[hp.name] = hp.prob_to_value(asked.suggest_float(hp.name + PROB, 0.0, 1.0))
            else:
                hps.values[hp.name] = _suggest_one(asked, hp.name, dist)
        return hps.values

    def _trial_with(self, values: dict):
        """The earlier trial that had these values (None if it is not known here)."""
        digest = self._compute_values_hash(values)
        return next((t for tid, t in self.trials.items() if self._id_to_hash.get(tid) == digest), None)

    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.trial_id not in self.end_order:  # sent for a retry: not over yet
            return
        asked = self._asked.pop(ended.trial_id, None)
        if asked is None:  # asked before a resume: Optuna learns it as a finished trial
            self._tell_ended(ended)
        else:
            self._tell(asked, ended)

    def _tell(self, asked, ended) -> None:
        from optuna.trial import TrialState

        values = self._values(ended)
        if values is None:
            self._study.tell(asked, state=TrialState.FAIL)
        else:
            self._study.tell(asked, values if self.goals else values[0])

    def _tell_ended(self, ended) -> None:
        import optuna
        from optuna.trial import TrialState

        params, dists = {}, {}
        hps = ended.hyperparameters
        for hp in self.hyperparameters.space:
            if isinstance(hp, kt_hp.Fixed) or hp.name not in hps.values or not hps.is_active(hp.name):
                continue
            value, dist = hps.values[hp.name], distribution(hp)
            if dist is None:
                from optuna.distributions import FloatDistribution

                name, value, dist = hp.name + PROB, min(max(hp.value_to_prob(value), 0.0), 1.0), \
                    FloatDistribution(0.0, 1.0)
            else:
                name = hp.name
            params[name], dists[name] = value, dist
        values = self._values(ended)
        if values is None:
            frozen = optuna.trial.create_trial(params=params, distributions=dists, state=TrialState.FAIL)
        else:
            frozen = optuna.trial.create_trial(params=params, distributions=dists, values=values)
        self._study.add_trial(frozen)

    def _values(self, ended) -> list[float] | None:
        """What Optuna is told of a finished trial: its score, or each goal's value at the trial's best step (the
        epoch of the model the trial keeps); None for a trial that failed or lacks a value."""
        if ended is None or ended.status != kt_trial.TrialStatus.COMPLETED:
            return None
        if not self.goals:
            return [float(ended.score)] if _finite(getattr(ended, "score", None)) else None
        values = [_value_at(ended, g.name, ended.best_step) for g in self.goals]
        return values if all(_finite(v) for v in values) else None


def _suggest_one(asked, name: str, dist):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return asked.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return asked.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return asked.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def _value_at(trial, name: str, step):
    """The metric's value at `step` (mean over executions), else its last value (a measure taken once)."""
    if not trial.metrics.exists(name):
        return None
    history = trial.metrics.get_history(name)
    at_step = [obs for obs in history if obs.step == step]
    return float((at_step or history)[-1].mean()) if history else None


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
