"""The study's side of an ended trial: its row in trials.jsonl, best/ when it leads, one progress line."""

from __future__ import annotations

import sys
import time

from omegaconf import DictConfig

from extf.objective import Objective
from extf.tuning.context import TrialResult
from extf.tuning.pareto import Objectives, leads
from extf.tuning.state import StudyState
from extf.tuning.trial import val_loss_min


class TrialRecorder:
    """Records the trials this process runs into `state`; `worker_id`: a worker of a distributed search, whose
    lines start with its id and count every worker's trials."""

    def __init__(self, cfg: DictConfig, state: StudyState, objective: Objective, out=sys.stdout,
                 worker_id: str | None = None, started: float | None = None,
                 objectives: Objectives | None = None):
        self.cfg = cfg
        self.state = state
        self.objective = objective
        self.objectives = objectives or Objectives()  # its constraints decide which trial may lead
        self.out = out
        self.worker_id = worker_id
        self.started = time.time() if started is None else started
        self.first_error: BaseException | None = None  # of this process's first FAILED trial

    def record(self, result: TrialResult) -> None:
        """Called by the tuner when a trial ends: keep the best weights, print one progress line."""
        name = self.objective.name
        row = {"trial_id": result.trial_id, "status": result.status, name: result.value, "epochs": result.epochs,
               "seconds": round(result.seconds, 2), **result.hp_values}
        if result.reason:
            row["reason"] = result.reason
        if result.pruned_at is not None:
            row["pruned_at_epoch"] = result.pruned_at
        if result.cv_epochs is not None:
            row["cv_epochs"] = result.cv_epochs
        row.update(result.measures)  # params, latency_ms, the other objectives at the best epoch
        if (loss_min := val_loss_min(result.history, name)) is not None:  # the tie-break (Objective.rank)
            row["val_loss_min"] = loss_min
        self.state.append(row)
        if result.status == "FAILED" and self.first_error is None:
            self.first_error = result.error
        n_done, best_shown = self._progress()
        feasible = self.objectives.feasible(row)  # tuner.select=first: only these lead
        if result.status == "FINISHED" and result.value is not None and feasible and self._leads(row):
            self.state.keep_best(row, result.value, result.hp_values, result.model, result.history)
        value_text = self._value_text(result, row, feasible)
        best = self.state.best_value if best_shown is None else best_shown
        budget = f"  budget left {result.budget_left:.0f}s" if result.budget_left is not None else ""
        self.say(f"[trial {n_done}/{self.cfg.tuner.max_trials}] {self._shown(result.hp_values)}  {value_text}  "
                 f"best={fmt(best)}  epochs={result.epochs}  {time.time() - self.started:.1f}s{budget}")

    def _leads(self, row: dict) -> bool:
        """Ahead of the best trial so far: the leaderboard's order, and with several objectives a tie on the first
        goes to the trial that dominates on the others (extf.tuning.pareto.leads: the tested trial is on the front)."""
        if self.state.best_value is None or self.state.best_trial is None:
            return True
        best = {**self.state.best_trial, self.objective.name: self.state.best_value}
        return leads(row, best, list(self.objectives.goals), self.objective)

    def _value_text(self, result: TrialResult, row: dict, feasible: bool) -> str:
        """The trial's values on its progress line: the objective (or why it failed), pruning, other objectives,
        the constraints it misses."""
        if result.value is None:
            return f"FAILED ({result.reason})"
        text = f"{self.objective.name}={fmt(result.value)}"
        if result.pruned_at is not None:
            text += f"  pruned at epoch {result.pruned_at}"
        if self.objectives.several:
            text += "".join(f"  {g.name}={fmt(row.get(g.name))}" for g in self.objectives.goals[1:])
        if not feasible:
            text += "  (misses " + ", ".join(str(c) for c in self.objectives.constraints if not c.holds(row)) + ")"
        return text

    def say(self, text: str) -> None:
        """A line on the study's output (a trial line, a note); in a worker it starts with the worker's id."""
        print(f"[{self.worker_id}] {text}" if self.worker_id else text, file=self.out, flush=True)

    def _progress(self) -> tuple[int, float | None]:
        """(trials done, the best value to show; None: this process's own best). A worker counts every worker's
        trials and shows the best of them all."""
        if not self.worker_id:
            return len(self.state.trials), None
        rows = self.state.logged_trials()
        best = None
        for r in rows.values():
            v = r.get(self.objective.name)
            if (r.get("status") == "FINISHED" and v is not None and self.objective.better(v, best)
                    and self.objectives.feasible(r)):
                best = v
        return len(rows), best

    def _shown(self, hp_values: dict) -> str:
        order = {k: i for i, k in enumerate(self.cfg.search_space)}  # workers get the values in another order
        shown = " ".join(f"{k}={fmt(v)}" for k, v in sorted(hp_values.items(), key=lambda kv: order.get(kv[0], 1e9))
                         if not k.startswith("tuner/"))
        return shown or "(fixed config)"


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
