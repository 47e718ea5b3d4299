"""Pruning: stop a trial at the end of an epoch when its objective is clearly worse than the other trials' were.

The rule runs in the oracle (`update_trial`, which keras-tuner calls with each epoch's values), so that it sees every
trial of the study, also those of distributed workers: the chief's oracle answers each worker's per-epoch report with
the trial, whose status is STOPPED once the rule prunes it; the trial then ends at that epoch (Keras'
`stop_training`), keeps the values it reached and is recorded FINISHED with `extf.pruned=true`. The value of a
trial's last planned epoch (its last fold's or execution's) comes marked (FINAL_EPOCH): with nothing left to stop, the
rule does not judge it, and the trial counts among the finished ones.

Two rules, as Optuna defines them:
- median (Optuna's MedianPruner): from epoch `warmup_epochs` + 1 on, once `min_trials` trials have finished without
  being pruned, a trial whose best value so far is worse than the median of those trials' values at the same epoch
  stops.
- asha (Optuna's SuccessiveHalvingPruner, asynchronous successive halving): rungs at epochs m, m·η, m·η², …
  (m = max(1, warmup_epochs), η = `factor`); a trial reaching a rung goes on only if its value there is among the
  best 1/η of all values recorded at that rung so far (at least the best one), once `min_trials` trials reached it.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import keras_tuner as kt
from keras_tuner.engine import trial as kt_trial

RULES = ("none", "median", "asha")
PRUNED_AT = "extf/pruned_at_epoch"  # a metric of the oracle's answer (gRPC carries metrics, not messages)
FINAL_EPOCH = "extf/final_epoch"  # a metric sent with a trial's last planned epoch: nothing is left to prune there


def pruned_epoch(answer) -> int | None:
    """The 0-based epoch a trial was pruned at, from the oracle's answer to `update_trial`; None if not pruned
    (a trial STOPPED without it was stopped by the time budget)."""
    if answer.status != kt_trial.TrialStatus.STOPPED or not answer.metrics.exists(PRUNED_AT):
        return None
    return int(answer.metrics.get_best_value(PRUNED_AT))


@dataclass(frozen=True)
class PruningRule:
    """Whether a trial should stop at an epoch, given its values so far and the other trials' (pure logic)."""

    kind: str  # median | asha
    direction: str  # min | max
    warmup_epochs: int = 2
    min_trials: int = 3
    factor: int = 3

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def best(self, values) -> float:
        return max(values) if self.direction == "max" else min(values)

    def should_stop(self, epoch: int, own: dict[int, float], finished: list[dict[int, float]],
                    others: list[dict[int, float]]) -> bool:
        """`epoch`: 0-based; `own`: this trial's {epoch: value}; `finished`: the histories of trials that ended
        without being pruned; `others`: the histories of every other trial (running, finished or pruned)."""
        if epoch not in own:
            return False
        if self.kind == "median":
            return self._median_stops(epoch, own, finished)
        if self.kind == "asha":
            return self._asha_stops(epoch, own, others)
        return False

    def _median_stops(self, epoch: int, own: dict[int, float], finished: list[dict[int, float]]) -> bool:
        if epoch < self.warmup_epochs:
            return False
        at_epoch = [h[epoch] for h in finished if epoch in h]
        if len(at_epoch) < max(1, self.min_trials):
            return False
        best_so_far = self.best(v for e, v in own.items() if e <= epoch)
        return self.better(statistics.median(at_epoch), best_so_far)

    def rung_epochs(self, up_to: int) -> list[int]:
        """0-based epochs at which ASHA compares trials: m·η^k - 1."""
        rungs, resource = [], max(1, self.warmup_epochs)
        while resource - 1 <= up_to:
            rungs.append(resource - 1)
            resource *= self.factor
        return rungs

    def _asha_stops(self, epoch: int, own: dict[int, float], others: list[dict[int, float]]) -> bool:
        if epoch not in self.rung_epochs(epoch):
            return False
        competing = [h[epoch] for h in others if epoch in h] + [own[epoch]]
        if len(competing) < max(1, self.min_trials):
            return False
        keep = max(1, len(competing) // self.factor)
        ranked = sorted(competing, reverse=self.direction == "max")
        return self.better(ranked[keep - 1], own[epoch])


def with_pruning(oracle_class: type) -> type:
    """`oracle_class` (any keras-tuner oracle) whose `update_trial` applies a PruningRule (attribute `pruning`)."""
    return type(f"Pruning{oracle_class.__name__}", (PruningMixin, oracle_class), {})


class PruningMixin:
    """Mixed in before a keras-tuner oracle class: `update_trial` answers STOPPED for a pruned trial."""

    pruning: PruningRule | None = None

    def __init__(self, *args, pruning: PruningRule | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pruning = pruning
        self.pruned: dict[str, int] = {}  # trial_id -> the 0-based epoch it was stopped at

    @kt.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        metrics = dict(metrics)
        final = bool(metrics.pop(FINAL_EPOCH, 0))  # the marker is no value of the trial's
        trial = super().update_trial(trial_id, metrics, step=step)
        if (self.pruning is not None and not final and trial_id not in self.pruned
                and self.objective.name in metrics):
            if self.pruning.should_stop(int(step), self._history(trial_id), self._finished_histories(trial_id),
                                        self._other_histories(trial_id)):
                self.pruned[trial_id] = int(step)
        if trial_id in self.pruned:  # the answer says STOPPED; the oracle's own record stays RUNNING until it ends
            trial = copy.copy(trial)
            trial.status = kt_trial.TrialStatus.STOPPED
            trial.metrics = copy.deepcopy(trial.metrics)
            trial.metrics.register(PRUNED_AT, direction="min")
            trial.metrics.update(PRUNED_AT, self.pruned[trial_id])
        return trial

    def _history(self, trial_id: str) -> dict[int, float]:
        metrics = self.trials[trial_id].metrics
        if not metrics.exists(self.objective.name):
            return {}
        return {int(obs.step): float(obs.mean()) for obs in metrics.get_history(self.objective.name)}  # mean over executions

    def _finished_histories(self, trial_id: str) -> list[dict[int, float]]:
        return [self._history(tid) for tid in self.end_order
                if tid != trial_id and tid not in self.pruned
                and self.trials[tid].status == kt_trial.TrialStatus.COMPLETED]

    def _other_histories(self, trial_id: str) -> list[dict[int, float]]:
        return [self._history(tid) for tid in self.trials if tid != trial_id]

    def get_state(self):
        return {**super().get_state(), "pruned": dict(self.pruned)}

    def set_state(self, state):
        super().set_state(state)
        self.pruned = dict(state.get("pruned", {}))
