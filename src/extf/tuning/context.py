"""What the tuner gets to run trials (a `TrialContext`) and hands back (a `TrialResult`): never the study itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from extf.objective import Objective
from extf.tuning.pareto import Objectives

CHIEF_WORKER = "worker0"  # the `extf tune` process serves the oracle and runs trials itself under this id

STOP = "stop"  # TrialContext.report's answer that ends the trial's fit after this epoch


@dataclass
class TrialResult:
    """An ended trial, as the study records it."""

    trial_id: str
    hp_values: dict  # the trial's active hyperparameters (and keras-tuner's tuner/* values)
    status: str  # FINISHED | FAILED
    value: float | None  # the objective (the mean over executions); None when FAILED
    epochs: int  # epochs trained (a hyperband trial that continues its parent: the epochs added)
    seconds: float
    model: Any = None  # FINISHED: the best execution's model
    history: dict | None = None  # FINISHED: its Keras history
    reason: str | None = None  # FAILED: why
    error: BaseException | None = None  # FAILED: what run_trial caught (the study's message if no trial finishes)
    pruned_at: int | None = None  # FINISHED early: the 1-based epoch pruning stopped it at
    cv_epochs: int | None = None  # cross-validation: the epochs the final model trains (the folds' mean kept epochs)
    measures: dict = field(default_factory=dict)  # FINISHED: params, latency_ms, the other objectives' values
    budget_left: float | None = None  # seconds left of the study's time budget as the trial ended (None: no budget)


@dataclass(frozen=True)
class TrialContext:
    """A study's trials: their config, data, objective and tracker, and where their results go."""

    cfg: DictConfig
    splits: Any  # train and val reach the trials; test never does
    objective: Objective
    tracker: Any
    record: Callable[[TrialResult], None]  # the study's bookkeeping: trials.jsonl, best/, the progress line
    say: Callable[[str], None]  # a note on the study's output
    parent_run_id: str | None = None  # the study's parent run, which the trial runs belong to
    worker_id: str | None = None  # the tuner id in a distributed search (tags each trial run)
    init_weights: Path | None = None  # init_from: the weights every trial starts from
    folds: tuple = ()  # cross-validation: each trial trains once per fold (Splits of train + validation)
    objectives: Objectives = field(default_factory=Objectives)  # what each trial measures besides its objective
    started: float | None = None  # the study's start (time.time()): a time budget counts from it
    budget_deadline: float | None = None  # a worker process: when the chief's time budget ends (time.time(), from
    #                                       worker.json); the chief's oracle holds the budget, its client cannot ask

    def report(self, epoch: int, logs: dict[str, float]) -> str | None:
        """A trial's values after each epoch; `STOP` ends its fit there. The one place a pruning or time-budget
        policy plugs in: there is none yet, so every trial trains all its epochs."""
        return None
