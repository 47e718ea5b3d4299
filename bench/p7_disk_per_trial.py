"""P7: disk a study uses per non-best trial, in outputs/ and mlruns/ together. Goal: <= 1 MB, for a model whose
weights alone are larger than that: keeping every trial's weights (or checkpoints) would miss it.

One repetition = two fresh studies with the same seed, A with 2 trials and B with 12 (--quick: 1 and 3); the row
gives the median and range over the repetitions. Workload: digits, cnn with 3 blocks and no pooling
(model.num_blocks=3 model.pool_size=1, the default CNN space otherwise), so the 8x8 feature maps reach the dense head
whole: 0.6-3.1 M parameters, 2.5-12.5 MB of float32 weights per trial (more with the optimizer's state); random search,
2 epochs, the default callbacks (CSV logger, checkpoint, early stopping...) and tracking, i.e. what a user gets.
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

from common import (
    Failed,
    Figure,
    Sample,
    disk_bytes,
    mb,
    parallel,
    project,
    run_extf,
    script_main,
    study_trials,
)

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


MODEL = ["model=cnn", "model.num_blocks=3", "model.pool_size=1"]


def one_study(trials: int) -> dict:
    with project() as root:
        result = run_extf(["tune", "dataset=digits", *MODEL, "tuner=random", f"tuner.max_trials={trials}",
                           "trainer.epochs=2", "seed=42"], root)
        if result.returncode != 0:
            raise Failed(f"extf tune ({trials} trials) failed: {result.error()}")
        done = sum(t.get("status") == "FINISHED" for t in study_trials(root))
        return {"trials": done, **footprint(root)}


def figures(quick: bool = False) -> list[Figure]:
    n_a, n_b = (1, 3) if quick else (2, 12)

    def per_trial(_rep: int) -> Sample:
        a, b = parallel([lambda: one_study(n_a), lambda: one_study(n_b)])  # bytes, not seconds: both at once
        extra = b["trials"] - a["trials"]
        if extra <= 0:
            raise Failed(f"no extra trials finished ({a['trials']} vs {b['trials']})")
        per = (b["per_trial_part"] - a["per_trial_part"]) / extra
        db = (b["db"] - a["db"]) / extra
        tuner = (b["tuner"] - a["tuner"]) / extra
        return Sample(mb(per), f"{per / 1024:.0f} KB/trial (MLflow db {db / 1024:.0f} KB, tuner/ {tuner / 1024:.0f} KB, "
                               f"other {(per - db - tuner) / 1024:.0f} KB; study-level {mb(b['study_level']):.1f} MB)")

    return [Figure("P7", "disk per non-best trial, outputs/ + mlruns/",
                   f"digits {' '.join(MODEL)} (weights 2.5-12.5 MB), studies of {n_a} and {n_b} trials x 2 epochs, "
                   f"default callbacks, tracking on", GOAL, a=per_trial, unit="MB")]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
