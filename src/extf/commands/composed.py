"""The composed config made ready for a command: validated, `train` as a study of one fixed trial, absolute paths."""

from __future__ import annotations

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
