"""P11: does median pruning find a good model with fewer epochs? Epochs trained until the first trial whose
val_accuracy >= 0.98 on digits, `tuner.pruning=median` divided by `tuner.pruning=none` with the same seed; each seed is
one pair, and the row gives the median and range of the per-seed ratios over at least 5 seeds (1, 2, ...; --reps
more; --quick: 1 seed, a smaller study). Goal: <= 0.6. The detail also gives, per seed, the best val_accuracy each
study found (pruning may stop a trial that would have become the best: a seed where it is lower by more than 0.005
is flagged), the epochs of the whole study with ÷ without, and the trials pruned.

Epochs trained = the sum of the epochs of the trials (`epochs` of outputs/studies/*/trials.jsonl, in the order the
trials finished; a pruned trial counts the epochs it had) up to and including the first trial that reaches the
threshold. Both studies run to the end (the best val_accuracy is the whole study's); a study that never reaches the
threshold counts all its epochs and is marked "never". Both sides draw the same trials (random search with the same
seed; pruning only shortens them), which the detail checks. The studies run two at a time: this figure counts
epochs, not seconds.

Workload: model=cnn with its search space, except the learning rate, searched log-uniformly over 1e-5..1e-1 (the
default space's 5e-4..3e-3 holds only good values: with it the first trial reached 0.98 in 4 of 5 seeds, so there
was nothing to prune before the threshold, and the figure read 1.00 whatever pruning did). A range over four
decades is what a user searches when the right learning rate is unknown, and it holds trials that are clearly
worse after a few epochs (1e-5 learns slowly, 1e-1 diverges): what pruning is for. Random search, 20 trials x 10
epochs, callbacks=none (only the pruner stops a trial early), tracking=none and no baseline or plots (epochs do not
depend on them). Median pruning with pruning_warmup_epochs=2 (the default: no trial stops in its first 2 epochs)
and pruning_min_trials=2 (the default is 3; 2 is the least that compares with more than one finished trial, and
lets pruning act from the third trial of 20). A seed whose first or second trial reaches the threshold still gives
1.00: nothing can be pruned before it.
"""

from __future__ import annotations

import statistics
import sys

from common import Failed, Figure, Sample, epochs_until, log, project, run_extf, script_main, study_trials

GOAL = "<= 0.6"
THRESHOLD = 0.98
OBJECTIVE = "val_accuracy"
WORSE_BY = 0.005  # a best val_accuracy lower than this with pruning is flagged (about 1.5 of digits' 288 samples)
BASE = ["dataset=digits", "model=cnn", "tuner=random", "callbacks=none", "tracking=none", "evaluation.plots=false",
        "evaluation.baseline=false"]
# the CNN's space with a learning rate over four decades (see the docstring)
SPACE = "search_space={optimizer.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-1, sampling: log}}"
SIDES = {"median": ["tuner.pruning=median", "tuner.pruning_warmup_epochs=2", "tuner.pruning_min_trials=2"],
         "none": ["tuner.pruning=none"]}


def epochs_to_threshold(trials: list[dict]) -> tuple[int, bool, int]:
    """(epochs trained, reached?, trials run) up to the first trial at or above the threshold."""
    return epochs_until(trials, OBJECTIVE, THRESHOLD)


def hyperparameters(trial: dict) -> dict:
    """What a trial trained: its search-space values (keys are config paths)."""
    return {k: round(v, 10) if isinstance(v, float) else v for k, v in trial.items() if k.startswith(
        ("model.", "optimizer."))}


def one_study(pruning: str, seed: int, trials: int, epochs: int) -> Sample:
    with project() as root:
        args = ["tune", *BASE, SPACE, *SIDES[pruning], f"tuner.max_trials={trials}", f"trainer.epochs={epochs}",
                f"seed={seed}"]
        result = run_extf(args, root)
        rows = study_trials(root)
        if not result.ok:
            raise Failed(f"pruning={pruning} seed {seed} failed: {result.error()}")
    finished = [t for t in rows if t.get("status") == "FINISHED" and t.get(OBJECTIVE) is not None]
    if not finished:
        raise Failed(f"pruning={pruning} seed {seed}: no trial finished")
    spent, ok, n = epochs_to_threshold(rows)
    pruned = sum(t.get("pruned_at_epoch") is not None for t in rows)
    best = max(t[OBJECTIVE] for t in finished)
    log(f"P11: pruning={pruning} seed {seed}: {spent} epochs to {THRESHOLD}{'' if ok else ' (never)'} in {n} trials; "
        f"best {best:.4f}; study {sum(int(t.get('epochs') or 0) for t in rows)} epochs, {pruned} pruned")
    return Sample(spent, f"{spent}{'' if ok else ' (never)'}/{n}tr", {
        "seed": seed, "best": best, "pruned": pruned, "trials": len(rows),
        "total": sum(int(t.get("epochs") or 0) for t in rows), "hps": [hyperparameters(t) for t in rows]})


def detail(a: list[Sample], b: list[Sample]) -> str:
    """Per seed: best val_accuracy with / without pruning (flagged when lower), whole-study epochs, pruned trials."""
    seeds, lower, differ = [], [], []
    for x, y in zip(a, b):
        seed = x.data["seed"]
        if x.data["best"] < y.data["best"] - WORSE_BY:
            lower.append(seed)
        # pruning only shortens trials: a trial in another order would mean the two sides searched differently
        if x.data["hps"] != y.data["hps"]:
            differ.append(seed)
        seeds.append(f"seed {seed}: best {x.data['best']:.4f} / {y.data['best']:.4f}, study epochs "
                     f"{x.data['total']} / {y.data['total']}, {x.data['pruned']} of {x.data['trials']} pruned")
    whole = statistics.median(x.data["total"] / y.data["total"] for x, y in zip(a, b))
    flag = (f"best {OBJECTIVE} lower by more than {WORSE_BY} with pruning in seed(s) {lower}" if lower
            else f"best {OBJECTIVE} with pruning never lower by more than {WORSE_BY}")
    same = (f"the sides drew different trials in seed(s) {differ}" if differ
            else "both sides drew the same trials")
    return f"{flag}; whole study epochs median ratio {whole:.2f}; {same}; median / none per seed: {'; '.join(seeds)}"


def figures(quick: bool = False) -> list[Figure]:
    trials, epochs = (4, 3) if quick else (20, 10)
    return [Figure("P11", f"epochs to {OBJECTIVE} >= {THRESHOLD}: pruning=median / none, same seed",
                   f"digits cnn space, learning rate 1e-5..1e-1 (log), random search, {trials} trials x "
                   f"{epochs} epochs, median: warmup 2, min_trials 2, callbacks=none, tracking=none", GOAL,
                   a=lambda rep: one_study("median", rep + 1, trials, epochs),
                   b=lambda rep: one_study("none", rep + 1, trials, epochs),
                   detail=detail, min_reps=1 if quick else 5, jobs=2)]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
