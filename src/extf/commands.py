"""What `extf train` and `extf tune` do with a composed config: validate, run the study, report."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from extf.config import validate


def prepare(command: str, cfg: DictConfig) -> DictConfig:
    """Validate the composed config for a command. `train` is a study whose every value is fixed: one trial."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(cfg):
        cfg.command = command
        # absolute paths, so the tracking URI and artifact locations do not depend on the working directory
        cfg.paths.root_dir = str(Path(str(cfg.paths.root_dir)).expanduser().resolve())
        if command == "train":
            cfg.search_space = {}
            cfg.tuner.name = "random"
            cfg.tuner.max_trials = 1
            cfg.tuner.overwrite = True
            cfg.tuner.workers = 0  # one trial: nothing to distribute
    checked = validate(cfg)
    with open_dict(checked):
        checked.paths.study_dir = str(study_dir(checked) if command == "tune" else checked.paths.output_dir)
    return checked


def study_dir(cfg: DictConfig) -> Path:
    """outputs/studies/<experiment_name>-<hash of what the study computes, its data included>: the same command on
    the same data finds it again (extf.tuning.study.study_identity)."""
    from extf.tuning.study import study_identity

    return Path(cfg.paths.root_dir) / "outputs" / "studies" / f"{cfg.experiment_name}-{study_identity(cfg)[0]}"


def run_command(command: str, cfg: DictConfig, out=sys.stdout, overrides: list[str] | None = None):
    from extf.tuning.study import Study

    checked = prepare(command, cfg)
    if command in ("evaluate", "predict"):
        from extf import inference

        if command == "predict":
            return inference.predict(checked, out=out)
        dataset_overridden = any(o.lstrip("+~").startswith("dataset") for o in (overrides or []))
        return inference.evaluate(checked, dataset_overridden, out=out)
    summary = Study(checked, out=out).run()
    report(checked, summary, out)
    return summary


def report(cfg: DictConfig, summary: dict, out) -> None:
    from extf.tracking.runs import format_table, headline_metrics

    if len(summary["trials"]) > 1:
        shown = [{k: v for k, v in t.items() if k not in ("val_loss_min",)} for t in summary["trials"][:10]]
        print("\nleaderboard (validation; best first):", file=out)
        print(format_table(shown), file=out)
    headline = headline_metrics(summary["test_metrics"])
    metrics = "  ".join(f"{k}={v:.4f}" for k, v in headline.items())
    print(f"\nstudy {cfg.experiment_name}: best {summary['objective']}={summary['best'][summary['objective']]:.4f} "
          f"(trial_id {summary['best']['trial_id']} in the leaderboard)", file=out)
    print(f"test (evaluated once): {metrics}", file=out)
    print(f"outputs: {summary['study_dir']}", file=out)
    if cfg.tracking.enabled:
        print(f"MLflow: parent run {summary['parent_run_id']} in experiment '{cfg.experiment_name}' at "
              f"{cfg.tracking.tracking_uri}", file=out)
        uri = str(cfg.tracking.tracking_uri)
        print(f"        browse it at {uri}" if uri.startswith("http") else
              "        browse it with `make ui` (or `extf ui`) -> http://127.0.0.1:5000", file=out)
