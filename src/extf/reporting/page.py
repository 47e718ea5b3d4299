"""The report as one HTML page: inline CSS, inline SVG, images as data: URIs; nothing fetched from the network."""

from __future__ import annotations

import base64
from datetime import datetime
from html import escape

from extf import __version__
from extf.config.objectives import MEASURES
from extf.reporting.charts import importance, note, parallel_coordinates
from extf.reporting.study import StudyReport
from extf.tracking.runs import natural_key, short_value

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328;
       margin: 0; background: #f6f8fa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 2px; } h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 1px solid #d0d7de;
     padding-bottom: 4px; } h3 { font-size: 15px; margin: 0 0 8px; }
.sub { color: #57606a; margin: 0 0 18px; }
.facts { display: grid; grid-auto-flow: dense; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px 18px; }
.facts div { border-left: 3px solid #d0d7de; padding: 2px 10px; } .facts b { display: block; font-size: 11px;
     text-transform: uppercase; letter-spacing: .04em; color: #57606a; font-weight: 600; }
.facts .wide { grid-column: 1 / -1; } .facts .long { grid-column: span 2; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.status-FINISHED { color: #1a7f37; font-weight: 600; } .status-FAILED, .status-KILLED { color: #cf222e;
     font-weight: 600; } .status-RUNNING { color: #9a6700; font-weight: 600; }
.row { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; } .row > div { flex: 1 1 300px; }
table { border-collapse: collapse; font-size: 13px; } th, td { padding: 4px 8px; text-align: left;
     border-bottom: 1px solid #eaeef2; white-space: nowrap; } th { background: #f6f8fa; font-weight: 600; vertical-align: bottom; }
.scroll th { white-space: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { display: inline-block; max-width: 100%; overflow-x: auto; border: 1px solid #d0d7de;
     border-radius: 6px; } tr.best td { background: #fff8c5; font-weight: 600; }
tr.failed td { color: #8c959f; } td.reason { white-space: normal; min-width: 220px; }
.kpi { font-size: 30px; font-weight: 700; margin: 0; } .kpi small { font-size: 14px; color: #57606a;
     font-weight: 400; }
.note { color: #57606a; font-size: 13px; max-width: 900px; }
.bar { display: inline-block; width: 240px; height: 12px; background: #eaeef2; border-radius: 3px;
     vertical-align: middle; margin-right: 8px; } .bar span { display: block; height: 100%; background: #2a788e;
     border-radius: 3px; }
.images { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 18px; }
.images .wide { grid-column: 1 / -1; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px; } figure img { max-width: 100%; max-height: 480px;
     display: block; margin: 0 auto; } figcaption { font-size: 12px; color: #57606a; text-align: center; }
svg.parallel { font-size: 12px; background: #fff; }
svg.parallel text { paint-order: stroke; stroke: #fff; stroke-width: 3px; fill: #1f2328; }
svg.parallel .prefix { fill: #57606a; font-size: 11px; } svg.parallel .name { font-weight: 600; }
svg.parallel .objective { font-weight: 700; fill: #0969da; } svg.parallel .tick { font-size: 11px; }
svg.parallel .axis { stroke: #57606a; stroke-width: 1.2; }
svg.parallel polyline, svg.parallel line.best, svg.parallel line.failed { fill: none; stroke-width: 2;
     stroke-opacity: .85; } svg.parallel .best { stroke-width: 4.5; stroke-opacity: 1; }
svg.parallel .failed { stroke: #8c959f; stroke-dasharray: 5 4; stroke-opacity: .7; }
footer { margin-top: 40px; color: #8c959f; font-size: 12px; }
"""


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if ms else "—"


def _duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return "— (not ended)"
    seconds = round((end - start) / 1000)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours} h " if hours else "") + (f"{rest // 60} min " if seconds >= 60 else "") + f"{rest % 60} s"


def _table(header: list[str], rows: list[list[str]], cols: dict[int, str] | None = None,
           classes: list[str] = ()) -> str:
    """Cells are HTML already escaped; `cols` gives column indexes a CSS class (num: right-aligned)."""
    cols = cols or {}
    head = "".join(f'<th class="{cols.get(i, "")}">{h}</th>' for i, h in enumerate(header))
    body = "".join(f'<tr class="{classes[r] if classes else ""}">'
                   + "".join(f'<td class="{cols.get(i, "")}">{c}</td>' for i, c in enumerate(row))
                   + "</tr>" for r, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fact(label: str, value: str, width: str = "") -> str:
    return f'<div class="{width}"><b>{escape(label)}</b>{value}</div>'


def _header(r: StudyReport) -> str:
    info, tags = r.run.info, r.run.data.tags
    finished = sum(t.status == "FINISHED" for t in r.trials)
    versions = " · ".join(f"{k[len('version.'):]} {v}" for k, v in sorted(tags.items()) if k.startswith("version."))
    direction = "maximise" if r.objective.direction == "max" else "minimise"
    facts = [("experiment", escape(r.experiment)),
             ("status", f'<span class="status-{escape(info.status)}">{escape(info.status)}</span>'),
             *((k, escape(tags.get(k, "—"))) for k in ("command", "dataset", "model", "tuner", "task")),
             ("objective", f"{escape(r.objective.name)} ({direction})"),
             ("trials", f"{finished} finished of {len(r.trials)}"), ("best trial", escape(tags.get("best_trial_id", "—"))),
             ("started", escape(_when(info.start_time))), ("duration", escape(_duration(info.start_time, info.end_time)))]
    body = "".join(_fact(k, v) for k, v in facts) + _fact("run id", f"<code>{escape(info.run_id)}</code>", "long")
    if "git_commit" in tags:
        body += _fact("git commit", f"<code>{escape(tags['git_commit'])}</code>", "long")
    body += _fact("versions", escape(versions), "wide") if versions else ""
    title = tags.get("extf.study") or info.run_name or info.run_id
    return (f"<h1>Study {escape(title)}</h1><p class='sub'>extf report of MLflow run <code>{escape(info.run_id)}</code>"
            f" in experiment {escape(r.experiment)}</p><div class='facts'>{body}</div>")


def _split_per_class(tests: dict[str, float]) -> tuple[list[tuple[str, float]], dict[str, dict[str, float]]]:
    """test_<m>_<class> metrics that have a test_<m>_macro go to a class x metric table; the rest stay as they are."""
    bases = [k[:-len("_macro")] for k in tests if k.endswith("_macro")]
    summary, per_class = [], {}
    for k, v in sorted(tests.items()):
        base = next((b for b in bases if k.startswith(b + "_") and k != b + "_macro"), None)
        if base:
            per_class.setdefault(k[len(base) + 1:], {})[base[len("test_"):]] = v
        else:
            summary.append((k, v))
    return summary, per_class


def _test_metrics(metrics: dict[str, float]) -> str:
    summary, per_class = _split_per_class({k: v for k, v in metrics.items() if k.startswith("test_")})
    if not summary and not per_class:
        return f"<div>{note('No test_* metrics are logged on this run (the study did not finish its test evaluation).')}</div>"
    html = "<div><h3>Test metrics (test split, evaluated once)</h3>"
    html += _table(["metric", "value"], [[escape(k), short_value(v)] for k, v in summary], {1: "num"}) + "</div>"
    if per_class:
        names = sorted({m for row in per_class.values() for m in row})
        rows = [[escape(c), *(short_value(per_class[c][m]) if m in per_class[c] else "" for m in names)]
                for c in sorted(per_class, key=natural_key)]
        html += (f"<div><h3>Per class (test_&lt;metric&gt;_&lt;class&gt;)</h3>"
                 f"{_table(['class', *map(escape, names)], rows, dict.fromkeys(range(1, len(names) + 1), 'num'))}</div>")
    return html


def _results(r: StudyReport) -> str:
    metrics, params = r.run.data.metrics, r.run.data.params
    best_val = metrics.get(f"best_{r.objective.name}")
    # best.* tags (a study extended later may find another best trial); params in runs logged before that
    tags = r.run.data.tags
    source = tags if any(k.startswith("best.") for k in tags) else params
    best_hps = [(k[len("best."):], v) for k, v in source.items() if k.startswith("best.")]
    kpi = (f"<p class='kpi'>{short_value(best_val)} <small>best_{escape(r.objective.name)} (trial "
           f"{escape(r.run.data.tags.get('best_trial_id', '?'))})</small></p>" if best_val is not None
           else note("No best_val_* metric is logged on this run."))
    hps_html = (_table(["hyperparameter", "value"], [[escape(k), escape(short_value(v))] for k, v in best_hps], {1: "num"})
                if best_hps else note("No best.* tags: no hyperparameter was searched (one fixed trial)."))
    return (f"<h2>Results</h2><div class='row'>{_test_metrics(metrics)}<div><h3>Best validation objective</h3>{kpi}"
            f"{_baseline(r)}<h3>Best hyperparameters</h3>{hps_html}</div></div>")


def _baseline(r: StudyReport) -> str:
    """The scikit-learn baseline on the same training split (extf.evaluation.baseline) beside the tuned model."""
    metrics, name = r.run.data.metrics, r.run.data.tags.get("extf.baseline")
    scores = sorted((k[len("baseline_"):], v) for k, v in metrics.items() if k.startswith("baseline_"))
    if not name or not scores:
        return ""
    tuned = {k: metrics.get(k if k.startswith("test_") else f"best_{k}") for k, _ in scores}  # best_val_*: best trial
    rows = [[escape(k), short_value(v), "—" if tuned[k] is None else short_value(tuned[k])] for k, v in scores]
    about = note("Fitted on the same training split, scored on validation and once on test.")
    return (f"<h3>Baseline: {escape(name)}</h3>{about}"
            f"{_table(['metric', 'baseline', 'tuned model'], rows, {1: 'num', 2: 'num'})}")


def _leaderboard(r: StudyReport) -> str:
    hps = r.hp_names
    with_reason = any(t.reason for t in r.trials)
    measures = [m for m in MEASURES if any(m in (t.measures or {}) for t in r.trials)]
    with_pruned = any(t.pruned_at for t in r.trials)
    extra = [*measures, *(["pruned at epoch"] if with_pruned else [])]
    header = ["#", "trial", "status", escape(r.objective.name), *(escape(h).replace(".", ".<wbr>") for h in hps),
              "epochs", *extra, *(["reason"] if with_reason else [])]
    rows, classes = [], []
    for rank, t in enumerate(r.trials, 1):
        cells = [str(rank), escape(t.trial_id), f'<span class="status-{escape(t.status)}">{escape(t.status)}</span>',
                 "—" if t.value is None else short_value(t.value),
                 *(escape(short_value(t.params[h])) if h in t.params else "" for h in hps),
                 "" if t.epochs is None else str(t.epochs),
                 *(short_value((t.measures or {})[m]) if m in (t.measures or {}) else "" for m in measures),
                 *([escape(t.pruned_at)] if with_pruned else [])]
        rows.append(cells + ([escape(t.reason)] if with_reason else []))
        classes.append("best" if rank == 1 and t.value is not None else ("failed" if t.value is None else ""))
    last = 5 + len(hps) + len(extra)
    cols = {i: "num" for i in (0, 3, *range(4, last))} | {last: "reason"}
    table = _table(header, rows, cols, classes)
    return (f"<h2>Leaderboard</h2><p class='note'>All {len(r.trials)} trials, best {escape(r.objective.name)} first "
            f"(the value at each trial's best epoch on the validation split); failed and unfinished trials last."
            f"</p><div class='scroll'>{table}</div>" if r.trials else "<h2>Leaderboard</h2>" + note("No trials."))


def _images(r: StudyReport) -> str:
    if not r.images:
        return "<h2>Plots</h2>" + note("No learning_curves.png or plots/*.png artifact is logged on this run.")
    figures = "".join(f'<figure class="{"wide" if "/" not in path else ""}"><img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" '
                      f'alt="{escape(path)}"><figcaption>{escape(path)}</figcaption></figure>' for path, data in r.images)
    return f"<h2>Plots</h2><div class='images'>{figures}</div>"


def render(r: StudyReport, tracking_uri: str) -> str:
    sections = [_header(r), _results(r), _leaderboard(r),
                "<h2>Trials in parallel coordinates</h2>" + parallel_coordinates(r.trials, r.hp_names, r.objective),
                "<h2>Hyperparameter importance</h2>" + importance(r.trials, r.hp_names, r.objective),
                _images(r)]
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    title = f"extf report: {r.experiment} {r.run.info.run_id[:8]}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)}</title><style>{CSS}</style></head>'
            f'<body><main>{"".join(sections)}<footer>Generated by extf {__version__} (`extf report`) on {generated} '
            f'from {escape(tracking_uri)}. Self-contained: no network needed to read it.</footer></main></body></html>\n')
