"""P7: disk a study uses per non-best trial, in outputs/ and mlruns/ together. Goal: <= 1 MB.

Two fresh studies with the same seed, A with 2 trials and B with 12 (--quick: 1 and 4): digits, mlp, random,
5 epochs, the default callbacks (CSV logger, checkpoint, early stopping...) and tracking, i.e. what a user gets.
From each project's bytes on disk (allocated blocks, as `du`) the study-level files are taken out: the best trial's
weights (outputs/studies/*/best), the study's artifacts (outputs/studies/*/artifacts) and their MLflow copies (the
parent run's artifact directory and the logged model under mlruns/artifacts/*/models). What remains grows with the
trials (the MLflow database, the tuner's trial directories, trials.jsonl) plus a fixed part that A and B share
(the empty database, Hydra's run directory); the difference B - A divided by the 10 extra trials is the cost of one
more trial. The best trial's own trial directory counts like any other: only best/ is study-level.
The two studies run at the same time: this figure counts bytes, not seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import Row, disk_bytes, log, mb, na, parallel, project, row, run_extf, script_main, study_trials

GOAL = "<= 1 MB"


def study_level(root: Path) -> list[Path]:
    paths = []
    for study in (root / "outputs" / "studies").glob("*"):
        paths += [study / "best", study / "artifacts"]
        state = study / "study.json"
        parent = json.loads(state.read_text()).get("parent_run_id") if state.exists() else None
        for exp in (root / "mlruns" / "artifacts").glob("*"):
            paths += [exp / "models"] + ([exp / parent] if parent else [])
    return paths


def footprint(root: Path) -> dict:
    total = disk_bytes(root / "outputs", root / "mlruns")
    fixed = disk_bytes(*study_level(root))
    tuner = disk_bytes(*(root / "outputs" / "studies").glob("*/tuner"))
    db = disk_bytes(root / "mlruns" / "mlflow.db")
    return {"total": total, "study_level": fixed, "per_trial_part": total - fixed, "tuner": tuner, "db": db}


def one_study(trials: int) -> dict:
    with project() as root:
        log(f"P7: extf tune, digits mlp, {trials} trials x 5 epochs, default callbacks")
        result = run_extf(["tune", "dataset=digits", "model=mlp", "tuner=random", f"tuner.max_trials={trials}",
                           "trainer.epochs=5", "seed=42"], root)
        done = sum(t.get("status") == "FINISHED" for t in study_trials(root))
        return {"trials": done, "ok": result.returncode == 0, "error": result.error(), **footprint(root)}


def measure(quick: bool = False) -> list[Row]:
    n_a, n_b = (1, 4) if quick else (2, 12)
    name = f"disk per non-best trial, outputs/ + mlruns/ (studies of {n_a} and {n_b} trials)"
    a, b = parallel([lambda: one_study(n_a), lambda: one_study(n_b)])
    for s in (a, b):
        if not s["ok"]:
            return [na("P7", name, GOAL, f"extf tune failed: {s['error']}", unit="MB")]
    extra = b["trials"] - a["trials"]
    if extra <= 0:
        return [na("P7", name, GOAL, f"no extra trials finished ({a['trials']} vs {b['trials']})", unit="MB")]
    per = (b["per_trial_part"] - a["per_trial_part"]) / extra
    db = (b["db"] - a["db"]) / extra
    tuner = (b["tuner"] - a["tuner"]) / extra
    return [row("P7", name, mb(per), GOAL,
                f"{per / 1024:.0f} KB/trial: MLflow db {db / 1024:.0f} KB, tuner/ {tuner / 1024:.0f} KB, other "
                f"{(per - db - tuner) / 1024:.0f} KB; study-level {mb(b['study_level']):.1f} MB; "
                f"{b['trials']}-trial study total {mb(b['total']):.1f} MB", unit="MB")]


def main() -> int:
    return script_main(measure, __doc__)


if __name__ == "__main__":
    sys.exit(main())
