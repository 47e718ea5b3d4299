"""`extf evaluate run_id=ID [dataset=...]`: recompute a logged study's test metrics (the logged numbers, for the same
data) with its logged model."""

from __future__ import annotations

import sys

from extf.commands import hydra_app

HELP = "recompute a logged study's test metrics: extf evaluate run_id=ID [dataset=...]"
HYDRA = True  # takes Hydra's options and config overrides (tab completion offers them)
INTERRUPTED = "interrupted; the MLflow runs were ended as KILLED."


def run(args: list[str]) -> int:
    return hydra_app.run("evaluate", args, job)


def job(cfg, overrides: list[str], out) -> dict[str, float]:
    from extf.commands.composed import prepare

    dataset_overridden = any(o.lstrip("+~").startswith("dataset") for o in overrides or [])
    return evaluate(prepare("evaluate", cfg), dataset_overridden, out=out)


def evaluate(cfg, dataset_overridden: bool, out=sys.stdout) -> dict[str, float]:
    """The logged model on the test split of the study's dataset (or of `cfg.dataset` when overridden)."""
    from extf.data import load_dataset
    from extf.data.inputs import check_input_shape
    from extf.evaluation.evaluate import evaluate_model
    from extf.models import prepare_splits
    from extf.tracking.logged import fetch, load_logged_model

    logged = fetch(cfg.tracking.tracking_uri, cfg.run_id)
    study_cfg = logged.config
    ds_cfg = cfg.dataset if dataset_overridden else study_cfg.dataset
    # the allow_targets of this project's extf.yaml, not the logged ones: a stored config cannot widen them
    splits = prepare_splits(study_cfg.model, load_dataset(ds_cfg, study_cfg.seed, cfg.allow_targets), cfg.allow_targets)
    if logged.dataset.get("input_shape"):  # before TensorFlow is imported to load the model
        check_input_shape(logged.dataset["input_shape"], splits.meta.input_shape, f"dataset '{splits.meta.name}'")
    model = load_logged_model(logged, cfg.allow_targets, unsafe=bool(cfg.get("unsafe_load")))
    if "table" not in logged.dataset:  # a table model takes a dict of columns
        check_input_shape(model, splits.meta.input_shape, f"dataset '{splits.meta.name}'")
    threshold = cfg.evaluation.threshold if cfg.evaluation.threshold != 0.5 else logged.dataset.get("threshold", 0.5)
    stateful = bool(study_cfg.model.get("stateful"))
    metrics, _ = evaluate_model(model, splits, "test", splits.meta, threshold, study_cfg.trainer.batch_size,
                                stateful=stateful)
    metrics = {f"test_{k}": v for k, v in metrics.items()}
    print(f"run {logged.run_id}: model on the test split of dataset '{splits.meta.name}' "
          f"({len(splits.test)} samples)", file=out)
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        logged_value = logged.metrics.get(key)
        note = ""
        if logged_value is not None and not dataset_overridden:
            note = "  (= logged)" if abs(logged_value - value) <= 1e-6 * max(1.0, abs(value)) else \
                f"  (logged {logged_value:.6g})"
        print(f"  {key.ljust(width)}  {value:.6g}{note}", file=out)
    return metrics
