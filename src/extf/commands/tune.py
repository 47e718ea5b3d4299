"""`extf tune`: search hyperparameters with keras-tuner on the validation split, test the best model once, log the
study to MLflow."""

from __future__ import annotations

import sys

from extf.commands import hydra_app

HELP = "search hyperparameters with keras-tuner on the validation split, test the best model once"
HYDRA = True  # takes Hydra's options and config overrides (tab completion offers them)
INTERRUPTED = "interrupted; the MLflow runs were ended as KILLED. Run the same command again to resume the study."


def run(args: list[str]) -> int:
    return hydra_app.run("tune", args, job)


def job(cfg, overrides: list[str], out) -> dict:
    return run_study("tune", cfg, out)


def run_study(command: str, cfg, out=sys.stdout) -> dict:
    """The study of `command` (tune, or train: a study of one fixed trial) on the composed config, then its
    summary."""
    from extf.commands.composed import prepare
    from extf.tuning.study import Study

    checked = prepare(command, cfg)
    summary = Study(checked, out=out).run()
    print_summary(checked, summary, out)
    return summary


def print_summary(cfg, summary: dict, out) -> None:
    """The leaderboard (when there was a search), the test metrics, and where the outputs and MLflow runs are."""
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
    if summary.get("baseline"):
        print(summary["baseline"], file=out)
    print(f"outputs: {summary['study_dir']}", file=out)
    if cfg.tracking.enabled:
        print(f"MLflow: parent run {summary['parent_run_id']} in experiment '{cfg.experiment_name}' at "
              f"{cfg.tracking.tracking_uri}", file=out)
        uri = str(cfg.tracking.tracking_uri)
        print(f"        browse it at {uri}" if uri.startswith("http") else
              "        browse it with `make ui` (or `extf ui`) -> http://127.0.0.1:5000", file=out)
        if cfg.tracking.log_model:
            print(f"        serve its model: {serve_command(uri, summary['parent_run_id'])}", file=out)


def serve_command(tracking_uri: str, run_id: str) -> str:
    """`mlflow models serve` of a study's logged model, as a user can paste it: MLflow's own default store is not
    extf's (`mlflow.db` in the current directory), so the command names the study's. Port 5002: `make server`'s
    tracking server has 5001."""
    import shlex

    return (f"MLFLOW_TRACKING_URI={shlex.quote(tracking_uri)} mlflow models serve -m runs:/{run_id}/model "
            f"-h 127.0.0.1 -p 5002 --env-manager local")
