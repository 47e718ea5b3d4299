"""A study's time budget (`tuner.time_budget`): no trial starts once it is spent, and a running trial ends at its
next epoch boundary, keeping the epochs it had.

Like pruning, the budget lives in the oracle, the one place every worker asks: `create_trial` answers STOPPED once the
budget is spent (keras-tuner's search loop, and each distributed worker's, then ends), and `update_trial` — called with
each epoch's values — answers STOPPED, which ends the trial's fit at that epoch. The clock starts with the study, not
with the oracle (`elapsed`: the study's start-up, its data loading and TensorFlow's import, counts). The time spent is
part of the oracle's saved state (oracle.json's `time_spent`, saved as each trial starts and ends), so a resumed study
goes on with what is left of its budget, its own start-up counted again. A budget the start-up alone spent still
lets one trial start (it stops after its first epoch): a study always has a model to test.
"""

from __future__ import annotations

import copy
import time

import keras_tuner as kt
from keras_tuner.engine import trial as kt_trial


def with_budget(oracle_class: type) -> type:
    """`oracle_class` (any keras-tuner oracle) that stops the study when its time budget is spent."""
    return type(f"Budgeted{oracle_class.__name__}", (TimeBudgetMixin, oracle_class), {})


class TimeBudgetMixin:
    """Mixed in before a keras-tuner oracle class; `time_budget`: seconds or None; `elapsed`: seconds the study had
    already run when the oracle was made (its start-up)."""

    def __init__(self, *args, time_budget: float | None = None, elapsed: float = 0.0, clock=time.monotonic,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.time_budget = time_budget
        self._clock = clock
        self._started = clock() - max(0.0, elapsed)  # this run of the study started then
        self._spent_before = 0.0  # seconds spent in earlier runs of this study (resume)

    def spent(self) -> float:
        return self._spent_before + (self._clock() - self._started)

    def time_left(self) -> float | None:
        return None if self.time_budget is None else max(0.0, self.time_budget - self.spent())

    def budget_spent(self) -> bool:
        return self.time_budget is not None and self.spent() >= self.time_budget

    @kt.synchronized
    def create_trial(self, tuner_id):
        # a trial to re-run would start too; and a budget spent by the start-up alone still gets one trial (stopped
        # at its first epoch), so that the study has a model to test
        if self.budget_spent() and tuner_id not in self.ongoing_trials and self.trials:
            self.tuner_ids.discard(tuner_id)
            return kt_trial.Trial(self.get_space(), status=kt_trial.TrialStatus.STOPPED)
        return super().create_trial(tuner_id)

    @kt.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        trial = super().update_trial(trial_id, metrics, step=step)
        if self.budget_spent() and trial.status != kt_trial.TrialStatus.STOPPED:
            trial = copy.copy(trial)
            trial.status = kt_trial.TrialStatus.STOPPED
        return trial

    def get_state(self):
        return {**super().get_state(), "time_spent": self.spent()}

    def set_state(self, state):
        super().set_state(state)
        self._spent_before = float(state.get("time_spent", 0.0))  # this run's clock goes on from its own start
