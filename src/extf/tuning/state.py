"""A study's state on disk, in its directory (outputs/studies/<experiment>-<hash>):

study.json     the parent run id, the study's identity, the test metrics once tested
trials.jsonl   one row per ended trial (every worker appends; the last row of a trial wins)
best/          the best trial's weights and row (a worker keeps its own in workers/<id>/best until the chief collects)

Re-running the same command reads them back: that is how a study resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from extf.errors import ConfigError
from extf.objective import Objective, ranked_trials

STATE_FILE = "study.json"
TRIALS_FILE = "trials.jsonl"
BEST_WEIGHTS, BEST_TRIAL = "model.weights.h5", "trial.json"
# what `tuner.overwrite=true` removes: everything the study wrote
STUDY_FILES = ("tuner", "best", "workers", "artifacts", STATE_FILE, TRIALS_FILE, "worker.json")


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


class StudyState:
    """The trials recorded so far and the best one, kept in `best_dir` (study_dir/best, or a worker's own)."""

    def __init__(self, study_dir: Path, best_dir: Path | None = None):
        self.dir = study_dir
        self.best_dir = best_dir or study_dir / "best"
        self.trials: list[dict] = []  # recorded order
        self.best_trial: dict | None = None
        self.best_hp: dict = {}
        self.best_value: float | None = None

    def prepare(self, overwrite: bool) -> None:
        """A writable study directory (emptied first with tuner.overwrite=true) with its best/."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".write_test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"Cannot write to the output directory {str(self.dir)!r} ({e.strerror}). "
                              f"Expected a writable directory; choose another with hydra.run.dir=PATH or "
                              f"paths.root_dir=PATH. Received: {str(self.dir)!r}") from None
        if overwrite:
            for name in STUDY_FILES:
                target = self.dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        self.best_dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict:
        """study.json, or {} for a new study (or an unreadable file)."""
        path = self.dir / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except json.JSONDecodeError:
            return {}

    def save(self, data: dict) -> None:
        write_json_atomic(self.dir / STATE_FILE, data)

    def logged_trials(self) -> dict[str, dict]:
        """trials.jsonl (every worker appends to it), the last row of each trial; a line cut by a crash is skipped."""
        by_id: dict[str, dict] = {}
        log = self.dir / TRIALS_FILE
        for line in (log.read_text(encoding="utf-8").splitlines() if log.exists() else []):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_id[row["trial_id"]] = row
        return by_id

    def trial_lines(self) -> int:
        """Rows in trials.jsonl: the difference before and after a search counts the trials it ran."""
        log = self.dir / TRIALS_FILE
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0

    def restore(self, objective: Objective) -> None:
        """On resume (and after a distributed search): the trials recorded so far and the best one."""
        if (self.dir / TRIALS_FILE).exists():
            self.trials = list(self.logged_trials().values())
        best = self.best_dir / BEST_TRIAL
        if best.exists() and (self.best_dir / BEST_WEIGHTS).exists():
            saved = json.loads(best.read_text(encoding="utf-8"))
            self.best_trial = saved["trial"]
            self.best_hp = saved["hyperparameters"]
            self.best_value = self.best_trial.get(objective.name)

    def append(self, row: dict) -> None:
        """A trial's row, in one write (workers append to the same file)."""
        self.trials = [t for t in self.trials if t["trial_id"] != row["trial_id"]] + [row]
        with open(self.dir / TRIALS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")

    def keep_best(self, row: dict, value: float, hp_values: dict, model, history: dict | None) -> None:
        """The new best trial: its weights and row in best_dir, each written atomically."""
        self.best_value, self.best_trial, self.best_hp = value, row, dict(hp_values)
        tmp = self.best_dir / f"{BEST_WEIGHTS}.tmp.weights.h5"  # Keras wants the name to end in .weights.h5
        model.save_weights(tmp)
        os.replace(tmp, self.best_dir / BEST_WEIGHTS)
        write_json_atomic(self.best_dir / BEST_TRIAL, {"trial": row, "history": history, "hyperparameters": hp_values})

    def best_history(self) -> dict:
        return json.loads((self.dir / "best" / BEST_TRIAL).read_text(encoding="utf-8"))["history"]

    def ranked(self, objective: Objective) -> list[dict]:
        return ranked_trials(self.trials, objective)


def collect_best(study_dir: Path, objective: Objective, objectives=None) -> bool:
    """The best trial over every worker's best/ (and an earlier one in study_dir/best) becomes study_dir/best,
    picked by the rule each process applied as its trials ended (extf.tuning.pareto.select, tuner.select: the
    best first objective among the trials that meet the constraints; tied, one on the Pareto front of the study's
    `objectives` (extf.tuning.pareto.Objectives), then the leaderboard's order)."""
    from extf.tuning.pareto import Goal, Objectives, select

    objectives = objectives or Objectives()
    candidates = []
    for d in [study_dir / "best", *sorted((study_dir / "workers").glob("*/best"))]:
        if (d / BEST_TRIAL).exists() and (d / BEST_WEIGHTS).exists():
            trial = json.loads((d / BEST_TRIAL).read_text(encoding="utf-8"))["trial"]
            if trial.get(objective.name) is not None:
                candidates.append((d, trial))
    goals = list(objectives.goals) or [Goal(objective.name, objective.direction)]
    chosen = select([trial for _, trial in candidates], goals, list(objectives.constraints), objectives.rule)
    if chosen is None:
        return False
    best_dir = next(d for d, trial in candidates if trial is chosen)
    target = study_dir / "best"
    if best_dir != target:
        target.mkdir(exist_ok=True)
        for name in (BEST_WEIGHTS, BEST_TRIAL):
            tmp = target / f".{name}.tmp"
            shutil.copyfile(best_dir / name, tmp)
            os.replace(tmp, target / name)
    return True
