"""`extf train`: `extf tune` where every value is fixed: one trial, the same code path and artifacts."""

from __future__ import annotations

from extf.commands import hydra_app, tune

HELP = "fit one model from the config (a study of one fixed trial), test it once, log it to MLflow"
HYDRA = True  # takes Hydra's options and config overrides (tab completion offers them)
INTERRUPTED = "interrupted; the MLflow runs were ended as KILLED."


def run(args: list[str]) -> int:
    return hydra_app.run("train", args, job)


def job(cfg, overrides: list[str], out) -> dict:
    return tune.run_study("train", cfg, out)
