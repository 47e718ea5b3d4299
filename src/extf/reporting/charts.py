"""Charts of a study's trials, as HTML fragments: parallel coordinates (inline SVG) and hyperparameter importance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from extf.objective import Objective
from extf.reporting.study import Trial
from extf.tracking.runs import short_value

WIDTH, TOP, HEIGHT, NA_GAP, SIDE = 1100, 92, 300, 28, 80  # SVG layout (px): plot area TOP..TOP+HEIGHT
MIN_TRIALS = 3  # below this, no importance estimate
NO_SEARCH = ("No hyperparameter was searched (a study of one fixed trial, such as `extf train`): there is nothing to "
             "compare across trials.")


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


@dataclass
class Axis:
    """One vertical axis: numeric (linear, or log over >= 1 decade) or categorical; None values are 'n/a'."""

    name: str
    values: list  # one per trial: float, str or None (a conditional hyperparameter that was absent, a failed trial)
    categories: list[str] | None = None  # None: numeric
    lo: float = 0.0
    hi: float = 0.0
    log: bool = False

    def _scale(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def position(self, v) -> float | None:
        """0 (bottom) .. 1 (top), None for a missing value."""
        if v is None:
            return None
        if self.categories is not None:
            return self.categories.index(v) / (len(self.categories) - 1) if len(self.categories) > 1 else 0.5
        span = self._scale(self.hi) - self._scale(self.lo)
        return (self._scale(v) - self._scale(self.lo)) / span if span else 0.5

    def ticks(self) -> list[tuple[float, str]]:
        if self.categories is not None:
            return [(self.position(c), c) for c in self.categories]
        if all(v is None for v in self.values):
            return []
        distinct = sorted({v for v in self.values if v is not None})
        if len(distinct) <= 5 and all(v.is_integer() for v in distinct):  # a few integers: each one
            return [(self.position(v), short_value(v)) for v in distinct]
        mid = math.sqrt(self.lo * self.hi) if self.log else (self.lo + self.hi) / 2
        return [(self.position(v), short_value(v)) for v in (self.lo, mid, self.hi)]


def _number(value) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def make_axis(name: str, raw: list) -> Axis:
    """Values logged as text ('128', 'relu', 'True', 'None') become numbers where all of them are numbers."""
    values = [None if v in (None, "None", "") else v for v in raw]
    present = [v for v in values if v is not None]
    numbers = [_number(v) for v in present]
    if any(str(v) in ("True", "False") for v in present) or None in numbers:
        return Axis(name, [None if v is None else str(v) for v in values], sorted({str(v) for v in present}))
    values = [None if v is None else _number(v) for v in values]
    lo, hi = (min(numbers), max(numbers)) if numbers else (0.0, 0.0)
    return Axis(name, values, None, lo, hi, log=lo > 0 and hi / lo >= 10)


def _viridis(t: float) -> str:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return to_hex(colormaps["viridis"](0.1 + 0.85 * t))  # skip the darkest purple: lines stay visible


def _goodness(trials: list[Trial], objective: Objective) -> dict[str, float]:
    """0 (worst) .. 1 (best) per finished trial id."""
    values = [t.value for t in trials if t.value is not None]
    if not values:
        return {}
    lo, hi = min(values), max(values)
    scaled = {t.trial_id: (t.value - lo) / (hi - lo) if hi > lo else 1.0 for t in trials if t.value is not None}
    return scaled if objective.direction == "max" else {k: 1 - v for k, v in scaled.items()}


def _label(x: float, y: float, text: str, anchor: str = "middle", cls: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'


def _axis_svg(axis: Axis, x: float, is_objective: bool) -> str:
    prefix, dot, last = axis.name.rpartition(".")
    parts = [f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + HEIGHT}" class="axis"/>',
             _label(x, TOP - 26, prefix + dot, cls="prefix") if prefix else "",
             _label(x, TOP - 12, last, cls="objective" if is_objective else "name")]
    for pos, text in axis.ticks():
        y = TOP + (1 - pos) * HEIGHT
        parts += [f'<line x1="{x - 4:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y:.1f}" class="axis"/>',
                  _label(x - 7, y + 4, text, "end", "tick")]
    if None in axis.values:
        parts.append(_label(x - 7, TOP + HEIGHT + NA_GAP + 4, "n/a", "end", "tick"))
    return "".join(parts)


def _trial_line(trial: Trial, axes: list[Axis], index: int, xs: list[float], colour: str | None, best: bool) -> str:
    points = []
    for axis, x in zip(axes, xs):
        pos = axis.position(axis.values[index])
        points.append(f"{x:.1f},{TOP + HEIGHT + NA_GAP if pos is None else TOP + (1 - pos) * HEIGHT:.1f}")
    cls = "best" if best else ("failed" if colour is None else "trial")
    style = f' stroke="{colour}"' if colour else ""
    hps = ", ".join(f"{k}={short_value(v)}" for k, v in trial.params.items())
    value = "no value" if trial.value is None else short_value(trial.value)
    title = f"trial {trial.trial_id} ({trial.status}): {axes[-1].name}={value}; {hps}"
    return f'<polyline points="{" ".join(points)}" class="{cls}"{style}><title>{escape(title)}</title></polyline>'


def _legend(trials: list[Trial], objective: Objective) -> str:
    finished = [t.value for t in trials if t.value is not None]
    if not finished:
        return _label(0, 16, "no trial finished with an objective value: every line is grey", "start", "tick")
    worst, best = (min(finished), max(finished)) if objective.direction == "max" else (max(finished), min(finished))
    stops = "".join(f'<stop offset="{i / 4:.2f}" stop-color="{_viridis(i / 4)}"/>' for i in range(5))
    return (f'<defs><linearGradient id="extf-viridis">{stops}</linearGradient></defs>'
            + _label(0, 16, f"colour: {objective.name} ({'higher' if objective.direction == 'max' else 'lower'}"
                     f" is better)", "start", "tick")
            + _label(0, 36, f"worst {short_value(worst)}", "start", "tick")
            + '<rect x="82" y="27" width="160" height="11" fill="url(#extf-viridis)"/>'
            + _label(250, 36, f"best {short_value(best)}", "start", "tick")
            + '<line x1="360" y1="32" x2="400" y2="32" class="best" stroke="#fde725"/>'
            + _label(406, 36, "best trial", "start", "tick")
            + '<line x1="490" y1="32" x2="530" y2="32" class="failed"/>'
            + _label(536, 36, "failed / no objective value", "start", "tick"))


def parallel_coordinates(trials: list[Trial], hp_names: list[str], objective: Objective) -> str:
    """One axis per hyperparameter plus the objective; one line per trial, coloured by its objective."""
    if not trials:
        return note("No trial runs are logged under this study.")
    if not hp_names:
        return note(NO_SEARCH)
    axes = [make_axis(h, [t.params.get(h) for t in trials]) for h in hp_names]
    axes.append(make_axis(objective.name, [t.value for t in trials]))
    step = (WIDTH - 2 * SIDE) / (len(axes) - 1)
    xs = [SIDE + i * step for i in range(len(axes))]
    goodness = _goodness(trials, objective)
    best_id = trials[0].trial_id if trials[0].value is not None else None
    order = sorted(range(len(trials)), key=lambda i: (trials[i].value is not None, goodness.get(trials[i].trial_id, 0)))
    lines = [_trial_line(trials[i], axes, i, xs, _viridis(goodness[trials[i].trial_id]) if trials[i].trial_id
                         in goodness else None, trials[i].trial_id == best_id) for i in order]
    height = TOP + HEIGHT + NA_GAP + 16
    return (note("One axis per hyperparameter and one for the objective; each line is a trial. Hover a line for its "
                 "values. Absent values (conditional hyperparameters, failed trials) sit on the n/a row.")
            + f'<svg class="parallel" viewBox="-10 0 {WIDTH + 20} {height}" width="100%" role="img" '
            f'aria-label="parallel coordinates of the trials">{_legend(trials, objective)}'
            + "".join(lines) + "".join(_axis_svg(a, x, a is axes[-1]) for a, x in zip(axes, xs)) + "</svg>")


def _feature(axis: Axis) -> list[float]:
    """Numbers for a random forest: categories as their index, absent values as their own value below the rest."""
    if axis.categories is not None:
        return [-1.0 if v is None else float(axis.categories.index(v)) for v in axis.values]
    return [axis.lo - 1 - (axis.hi - axis.lo) if v is None else v for v in axis.values]


def _spearman(axis: Axis, y: list[float]) -> str:
    pairs = [(v, t) for v, t in zip(axis.values, y) if v is not None]
    if axis.categories is not None or len(pairs) < MIN_TRIALS or len({v for v, _ in pairs}) < 2 \
            or len({t for _, t in pairs}) < 2:
        return "—"
    from scipy.stats import spearmanr

    return f"{spearmanr([v for v, _ in pairs], [t for _, t in pairs]).statistic:+.2f}"


def _bar(fraction: float) -> str:
    return (f'<div class="bar"><span style="width:{100 * fraction:.1f}%"></span></div>'
            f'<span class="num">{fraction:.3f}</span>')


def importance(trials: list[Trial], hp_names: list[str], objective: Objective) -> str:
    """Random-forest importance of the hyperparameters for the objective, over the finished trials."""
    done = [t for t in trials if t.value is not None]
    if not hp_names:
        return note(NO_SEARCH)
    if len(done) < MIN_TRIALS:
        return note(f"Hyperparameter importance needs at least {MIN_TRIALS} finished trials with an objective value; "
                    f"this study has {len(done)}. Run more trials (tuner.max_trials) to see which hyperparameters "
                    f"matter.")
    axes = [make_axis(h, [t.params.get(h) for t in done]) for h in hp_names]
    varied = [a for a in axes if len(set(a.values)) > 1]
    y = [t.value for t in done]
    if not varied or len(set(y)) < 2:
        return note(f"No hyperparameter varied, or every finished trial reached the same {objective.name}: there "
                    f"is no difference to explain.")
    from sklearn.ensemble import RandomForestRegressor

    x = [list(row) for row in zip(*(_feature(a) for a in varied))]
    forest = RandomForestRegressor(n_estimators=300, random_state=0).fit(x, y)
    ranked = sorted(zip(varied, forest.feature_importances_), key=lambda p: -p[1])
    rows = "".join(f"<tr><td>{escape(a.name)}</td><td>{_bar(float(imp))}</td><td class='num'>{_spearman(a, y)}</td>"
                   f"</tr>" for a, imp in ranked)
    fixed = [a.name for a in axes if a not in varied]
    return (f'<table class="importance"><thead><tr><th>hyperparameter</th><th>importance</th>'
            f'<th>Spearman ρ with {escape(objective.name)}</th></tr></thead><tbody>{rows}</tbody></table>'
            + note(f"Method: scikit-learn RandomForestRegressor (300 trees, random_state=0) fitted to predict "
                   f"{objective.name} from the hyperparameters over the {len(done)} finished trials; importance is "
                   f"its feature_importances_ (mean decrease in impurity, summing to 1). Categorical values are "
                   f"encoded as their index and absent conditional values as a value of their own. Spearman ρ is "
                   f"the rank correlation of a numeric hyperparameter with {objective.name} (— for categorical "
                   f"ones). With few trials these are indications, not measurements.")
            + (note("Not varied, so not ranked: " + ", ".join(fixed) + ".") if fixed else ""))
