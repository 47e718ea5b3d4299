"""What a study optimises and the one order of its trials, shared by the study, its leaderboard, the workers'
best, `extf runs` and `extf report`.

The order: the objective (a validation metric, minimised or maximised), then, since ties are common for accuracies
on small validation splits, the lower minimum validation loss (`val_loss_min`); trials without an objective value
(failed, killed, unfinished) come last in the order they were given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from extf.errors import ConfigError

T = TypeVar("T")

# `auto` objective per task; any other task (binary, multiclass) scores val_accuracy. Segmentation: val_mean_iou,
# since pixel accuracy is mostly background.
AUTO_OBJECTIVE = {"regression": "val_loss", "reconstruction": "val_loss", "segmentation": "val_mean_iou"}
LOWER_IS_BETTER = ("loss", "error", "mae", "mse")  # an `auto` direction: min when the name holds one of these


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # min | max

    def better(self, a: float, b: float | None) -> bool:
        """Whether `a` beats `b` on the objective alone (None: nothing to beat)."""
        return b is None or (a < b if self.direction == "min" else a > b)

    def rank(self, value: float, val_loss: float | None = None) -> tuple[float, float]:
        """Sort key, best first: the objective, then the lower minimum validation loss; a trial without one comes
        after those with one."""
        return (value if self.direction == "min" else -value, float("inf") if val_loss is None else val_loss)


def resolve_objective(name: str, direction: str, task: str) -> Objective:
    """The objective from tuner.objective.name / .direction (either may be `auto`) and the dataset's task; the
    objective is always a val_ metric."""
    if name == "auto":
        name = AUTO_OBJECTIVE.get(task, "val_accuracy")
    if not name.startswith("val_"):
        raise ConfigError(f"tuner.objective.name must be a validation metric (val_*): the tuner scores on the "
                          f"validation split only. Received: tuner.objective.name={name!r}")
    if direction == "auto":
        direction = "min" if any(k in name for k in LOWER_IS_BETTER) else "max"
    return Objective(name, direction)


def ranked(items: Iterable[T], objective: Objective, value: Callable[[T], float | None],
           val_loss: Callable[[T], float | None]) -> list[T]:
    """The items with an objective value (`value(item)`, None for none) best first by `Objective.rank`, then the
    others in their given order. The one ranking of trials, whatever holds them (rows, MLflow runs, best/ dirs)."""
    items = list(items)
    done = [i for i in items if value(i) is not None]
    done.sort(key=lambda i: objective.rank(value(i), val_loss(i)))
    return done + [i for i in items if value(i) is None]


def ranked_trials(trials: Iterable[dict], objective: Objective) -> list[dict]:
    """Recorded trial rows (trials.jsonl, best/trial.json) best first, then the failed ones."""
    return ranked(trials, objective, lambda t: t.get(objective.name), lambda t: t.get("val_loss_min"))
