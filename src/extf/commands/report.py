"""`extf report [run_id=ID] [output=PATH] [root=DIR] [tracking_uri=URI]`: write a study's HTML report and log it on the study's run."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from extf.commands.options import parse_options, store_uri
from extf.errors import ConfigError, ExtfError

HELP = "one self-contained HTML report of a study: extf report [run_id=ID] [output=PATH] (default: latest tune)"
OPTIONS = ("run_id=", "output=", "root=")  # what tab completion offers

USAGE = """\
usage: extf report [run_id=ID] [output=PATH] [root=DIR] [tracking_uri=URI]

Write one self-contained HTML report of a study (readable offline) and log it as artifact report.html on the
study's parent run.
  run_id=ID     a study's parent run id (see `extf runs`); default: the most recent finished `extf tune` study
  output=PATH   the HTML file (or a folder for it); default: outputs/reports/<experiment>-<run id[:8]>.html
  root=DIR      the project whose mlruns/ to read (default: $EXTF_ROOT or the working directory)
  tracking_uri=URI  read an MLflow server instead (http://127.0.0.1:5001 for `make server`) or a sqlite:/// store
"""


def output_path(output: str | None, root: str, experiment: str, run_id: str) -> Path:
    name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', experiment)}-{run_id[:8]}.html"
    if output is None:
        return Path(root).resolve() / "outputs" / "reports" / name
    path = Path(output).expanduser().resolve()
    return path / name if path.is_dir() or output.endswith(os.sep) else path


def write_atomic(path: Path, text: str, key: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the report to {path} ({e.strerror}). Expected a writable file path; pass "
                          f"output=PATH elsewhere. Received: {key}") from None


def log_report(client, run_id: str, path: Path) -> None:
    """Log the file as report.html on the run; MlflowClient.log_artifact leaves the run's status as it is."""
    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory(prefix="extf-report-") as tmp:
            copy = Path(tmp) / "report.html"
            shutil.copyfile(path, copy)
            client.log_artifact(run_id, str(copy))
    except (MlflowException, OSError) as e:
        raise ExtfError(f"the report is written to {path}, but logging it as artifact report.html on run {run_id} "
                        f"failed: {e}. Expected a writable artifact store (mlruns/artifacts/). Received: "
                        f"run_id={run_id!r}") from None


def run(args: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        print(USAGE)
        return 0
    opts = parse_options(args, {"run_id": None, "output": None, "tracking_uri": None}, "report",
                         "run_id=ID, output=PATH, root=DIR or tracking_uri=URI", allow_empty=False)
    uri = store_uri(opts, "report")
    from mlflow import MlflowClient

    from extf.reporting.page import render
    from extf.reporting.study import collect, latest_tune_study

    run_id = opts["run_id"] or latest_tune_study(uri)
    client = MlflowClient(uri)
    report = collect(client, run_id)
    path = output_path(opts["output"], opts["root"], report.experiment, run_id)
    write_atomic(path, render(report, uri), f"output={opts['output']!r}" if opts["output"] else f"root={opts['root']!r}")
    log_report(client, run_id, path)
    print(f"Report of study run {run_id} (experiment {report.experiment!r}, {len(report.trials)} trials):\n  {path}\n"
          f"Open it in any browser, no network needed: file://{path}  (or `xdg-open {path}`, `open` on macOS).\n"
          f"Also logged as artifact report.html on the run (MLflow UI: `extf ui`).")
    return 0
