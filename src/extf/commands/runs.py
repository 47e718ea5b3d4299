"""`extf runs`: the studies in the MLflow store with their test metrics, and a study's leaderboard."""

from __future__ import annotations

from extf.commands.options import parse_options, store_uri
from extf.tracking.runs import format_table, leaderboard, list_studies

HELP = "list the studies with their test metrics; `extf runs run_id=ID` shows a study's leaderboard"
OPTIONS = ("root=", "experiment=", "run_id=")  # what tab completion offers


def run(args: list[str]) -> int:
    """extf runs [root=DIR] [experiment=NAME] [run_id=ID] [tracking_uri=URI]"""
    opts = parse_options(args, {"experiment": None, "run_id": None, "tracking_uri": None}, "runs",
                         "root=DIR, experiment=NAME, run_id=ID or tracking_uri=URI")
    uri = store_uri(opts, "runs")
    if opts["run_id"]:
        print(f"Leaderboard of study run {opts['run_id']}:")
        print(format_table(leaderboard(uri, opts["run_id"])))
    else:
        print(format_table(list_studies(uri, opts["experiment"])))
        print("\nA study's trials: extf runs run_id=<run_id>   (or make runs RUN=<run_id>)")
    return 0
