"""Hyperband warm starts (keras-tuner's own Hyperband tuner does the same).

A trial that hyperband promotes to a later round carries `tuner/trial_id` (the trial of the previous round it
continues), `tuner/initial_epoch` and `tuner/epochs`. It starts from that parent's final weights, `<parent's trial
dir>/warm_start.weights.h5`, and fits epochs initial_epoch..epochs only, so it counts just the epochs added (the
optimizer starts afresh, as in keras-tuner). The parent's weights take precedence over `init_from`. A parent whose file
is missing (a study started before warm starts, a file deleted, a worker without the shared study directory) is said
once on the study's output and the trial trains from scratch for all `tuner/epochs` epochs.

The file is written (atomically) after a FINISHED hyperband trial that trains fewer than max_epochs: the last round of
a bracket trains max_epochs and is never continued. keras-tuner's HyperbandOracle continues a trial at most once (a
round's candidates exclude the trials already selected from the previous round, and a trial belongs to one round of
one bracket), so the parent's file is deleted once the trial continuing it has ended, FINISHED or FAILED (FAILED is
final: keras-tuner does not retry a FailedTrialError). An interrupted trial (Ctrl-C, a fatal error, kill -9) keeps
it, since that trial runs again when the study resumes. The files of trials hyperband does not promote stay until the
search is over (`drop_warm_starts`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

WARM_START = "warm_start.weights.h5"  # hyperband: a trial's final weights, for the trial that continues it


def parent_dir(hp_values: dict, trial_dir_of: Callable[[str], str]) -> Path | None:
    """The directory of the hyperband trial this one continues (None: a trial from scratch). tuner/* values are
    keras-tuner's bookkeeping, not declared hyperparameters."""
    parent = hp_values.get("tuner/trial_id")
    return Path(trial_dir_of(parent)) if parent else None


def warm_start(trial_id: str, hp_values: dict, parent: Path | None, say) -> tuple[Path, int] | None:
    """(the parent's weights file, the epoch to start from) for a trial hyperband promoted; None for a trial from
    scratch, also when the parent's file is missing (said once)."""
    if parent is None:
        return None
    path = parent / WARM_START
    if path.is_file():
        return path, int(hp_values.get("tuner/initial_epoch") or 0)
    say(f"trial {trial_id} continues hyperband trial {hp_values['tuner/trial_id']}, whose weights are missing "
        f"({path}); it trains from scratch for {int(hp_values.get('tuner/epochs') or 0)} epochs")
    return None


def may_be_continued(cfg, hp_values: dict) -> bool:
    """Whether hyperband may promote this trial to a later round: a hyperband trial that trains fewer than max_epochs
    (the last round of every bracket trains max_epochs)."""
    if cfg.tuner.name != "hyperband" or "tuner/epochs" not in hp_values:
        return False
    return int(hp_values["tuner/epochs"]) < int(cfg.tuner.max_epochs or cfg.trainer.epochs)


def save_warm_start(trial_id: str, model, trial_dir: Path, say) -> None:
    """The trial's final weights for the trial that continues it, written atomically (Keras wants the temporary
    name to end in .weights.h5 too). Not saving them only costs that trial its warm start."""
    tmp = trial_dir / f"warm_start.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(tmp)
        os.replace(tmp, trial_dir / WARM_START)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        say(f"trial {trial_id}: cannot save its weights for hyperband's next round ({e}); a trial continuing it "
            f"will train from scratch")


def drop_warm_start(parent: Path | None) -> None:
    if parent is not None:
        (parent / WARM_START).unlink(missing_ok=True)


def drop_warm_starts(tuner_dir: Path) -> None:
    """The search is over: no trial continues another any more, so every warm start goes (about one model's weights
    per trial not promoted). A study resumed with a larger budget may still continue a bracket whose next round had
    not started: those trials say so and train from scratch."""
    for f in tuner_dir.glob(f"search/trial_*/{WARM_START}"):
        f.unlink(missing_ok=True)


def drop_checkpoints(trial_dir: Path, keep: str | None = None) -> None:
    """Per-trial checkpoints are only needed during the trial; the study keeps the best weights in best/. `keep`:
    a file name to leave (the hyperband warm start of a FINISHED trial, which a later round may continue)."""
    for pattern in ("*.weights.h5", "*.keras", "*.h5"):
        for f in trial_dir.glob(pattern):
            if f.name != keep:
                f.unlink(missing_ok=True)
