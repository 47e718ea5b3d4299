"""`extf runs`: the studies in the MLflow store with their test metrics, and a study's leaderboard."""

from __future__ import annotations

from extf.config.objectives import MEASURES
from extf.errors import ConfigError
from extf.objective import Objective, ranked, resolve_objective


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def headline_metrics(metrics: dict) -> dict:
    """The metrics without the per-class test sensitivity/specificity (their macro averages stay)."""
    return {k: v for k, v in metrics.items()
            if not k.startswith(("test_sensitivity_", "test_specificity_")) or k.endswith("_macro")}


def list_studies(tracking_uri: str, experiment: str | None = None) -> list[dict]:
    """One row per study parent run, newest first."""
    client = _client(tracking_uri)
    exps = client.search_experiments()
    if experiment is not None:
        exps = [e for e in exps if e.name == experiment]
        if not exps:
            names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none yet"
            raise ConfigError(f"No MLflow experiment named {experiment!r}. Expected one of: {names}. "
                              f"Received: experiment={experiment!r}")
    if not exps:
        return []
    runs = client.search_runs([e.experiment_id for e in exps], filter_string="tags.`extf.kind` = 'study'",
                              order_by=["attributes.start_time DESC"], max_results=1000)
    names = {e.experiment_id: e.name for e in exps}
    rows = []
    for r in runs:
        tags, metrics = r.data.tags, r.data.metrics
        best = {k: v for k, v in metrics.items() if k.startswith("best_val_")}
        rows.append({
            "run_id": r.info.run_id, "experiment": names.get(r.info.experiment_id, "?"),
            "status": r.info.status, "dataset": tags.get("dataset", ""), "model": tags.get("model", ""),
            "tuner": tags.get("tuner", ""), "command": tags.get("command", ""),
            # logged when the study is tested; an interrupted or running study: count its finished trial runs
            "trials": int(metrics["finished_trials"]) if "finished_trials" in metrics else _finished_trials(client, r),
            **{k: round(v, 4) for k, v in best.items()},
            # per-class figures are in the study's run and report; one column each here would be unreadable
            **{k: round(v, 4) for k, v in sorted(headline_metrics(metrics).items()) if k.startswith("test_")},
            # the scikit-learn baseline on the same split (extf.evaluation.baseline): did the search beat it?
            **{f"baseline_{k}": round(metrics[f"baseline_{k}"], 4) for k in sorted(headline_metrics(metrics))
               if k.startswith("test_") and f"baseline_{k}" in metrics},
        })
    return rows


def _finished_trials(client, parent) -> int:
    return len(client.search_runs([parent.info.experiment_id], max_results=10000, filter_string=(
        f"tags.mlflow.parentRunId = '{parent.info.run_id}' and attributes.status = 'FINISHED'")))


def objective_of(run) -> Objective:
    """The objective a study (its parent run) optimised: the logged best_val_* metric, else the config's, with its
    direction."""
    params = run.data.params
    logged = next((k[len("best_"):] for k in sorted(run.data.metrics) if k.startswith("best_val_")), None)
    return resolve_objective(logged or params.get("tuner.objective.name", "auto"),
                             params.get("tuner.objective.direction", "auto"), run.data.tags.get("task", ""))


def natural_key(text: str):
    """'2' < '10' < 'a': trial ids and class names in their natural order."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def ranked_trial_runs(client, parent, objective) -> list:
    """The study's trial runs in the order of its leaderboard (Objective.rank: the objective, then the lower
    val_loss_min), then the failed, killed and unfinished ones by trial id."""
    children = client.search_runs([parent.info.experiment_id], max_results=10000,
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    children.sort(key=lambda r: natural_key(r.data.tags.get("extf.trial_id", r.info.run_name or "?")))

    def value(r):
        return r.data.metrics.get(f"{objective.name}_best") if r.info.status == "FINISHED" else None

    return ranked(children, objective, value, lambda r: r.data.metrics.get("val_loss_min"))


def leaderboard(tracking_uri: str, run_id: str) -> list[dict]:
    """The trials of one study, best objective first (FAILED / KILLED trials last)."""
    from extf.tracking.logged import get_run

    client = _client(tracking_uri)
    parent = get_run(client, run_id)
    objective = objective_of(parent)
    rows = []
    for r in ranked_trial_runs(client, parent, objective):
        value = r.data.metrics.get(f"{objective.name}_best")
        rows.append({"trial": r.data.tags.get("extf.trial_id", ""), "status": r.info.status,
                     objective.name: None if value is None else round(value, 4),
                     **{k: r.data.metrics[k] for k in MEASURES if k in r.data.metrics},
                     "pruned_at": r.data.tags.get("extf.pruned_epoch", ""),
                     **r.data.params, "reason": r.data.tags.get("extf.failure_reason", "")[:60]})
    return rows


def short_value(value) -> str:
    """A table cell: floats (and params that are floats as text) with 4 significant digits: 0.30000000000000004 ->
    0.3."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return text if number.is_integer() and "." not in text and "e" not in text else f"{number:.4g}"


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    for optional in ("reason", "pruned_at"):  # shown only when a row has one
        if all(not r.get(optional) for r in rows) and optional in columns:
            columns.remove(optional)
    cells = [[short_value(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)

