"""The benchmark harness (bench/common.py): sides alternate, ratios pair by pair, median, range and verdict."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from common import Failed, Figure, Sample, measure_figure, verdict  # noqa: E402


@pytest.mark.parametrize("values, goal, expected", [
    ([0.9, 1.0, 1.04], "<= 1.05", "yes"),
    ([1.06, 1.2, 1.1], "<= 1.05", "NO"),
    ([1.0, 1.07, 1.02], "<= 1.05", "undecided"),
    ([1.5, 1.41], ">= 1.4", "yes"),
    ([1.3, 1.39], ">= 1.4", "NO"),
    ([1.3, 1.5], ">= 1.4", "undecided"),
    ([1.4], ">= 1.4", "yes"),
])
def test_verdict(values, goal, expected):
    assert verdict(values, goal) == expected


def test_sides_alternate_and_ratios_are_taken_pair_by_pair():
    order = []

    def side(name, values):
        def run(rep):
            order.append(f"{name}{rep}")
            return Sample(values[rep], f"{values[rep]} s")
        return run

    fig = Figure("P0", "a / b", "toy", "<= 1.05", a=side("A", [10, 11, 12]), b=side("B", [10, 10, 10]))
    row = measure_figure(fig, reps=3)
    assert order == ["A0", "B0", "A1", "B1", "A2", "B2"]
    assert (row.value, row.low, row.high, row.n) == (1.1, 1.0, 1.2, 3)
    assert row.verdict == "undecided" and row.workload == "toy"
    assert row.detail.startswith("A / B per pair: 10 s / 10 s, 11 s / 10 s, 12 s / 10 s")


def test_a_figure_of_one_side_and_its_own_minimum_of_repetitions():
    fig = Figure("P0", "MB", "toy", "<= 50 MB", a=lambda rep: 10.0 * rep, unit="MB", min_reps=4)
    row = measure_figure(fig, reps=2)
    assert (row.n, row.value, row.low, row.high, row.verdict) == (4, 15.0, 0.0, 30.0, "yes")
    assert row.value_text == "15.00 MB" and row.range_text == "0.00 to 30.00"


def test_a_side_that_fails_makes_the_row_not_measured():
    def broken(rep):
        raise Failed("extf tune failed: boom")

    row = measure_figure(Figure("P0", "a / b", "toy", "<= 1.05", a=lambda rep: 1.0, b=broken), reps=2)
    assert row.value is None and row.verdict == "-" and row.detail == "extf tune failed: boom"


def test_a_figure_of_differences_subtracts_pair_by_pair():
    fig = Figure("P0", "ms on - off", "toy", "<= 50", a=lambda rep: [120.0, 140.0, 100.0][rep],
                 b=lambda rep: [100.0, 80.0, 100.0][rep], unit="ms/trial", compare="difference")
    row = measure_figure(fig, reps=3)
    assert (row.value, row.low, row.high, row.verdict) == (20.0, 0.0, 60.0, "undecided")


def test_figures_with_a_letter_are_found_in_order():
    import run

    names = list(run.figures())
    assert names.index("P3") + 1 == names.index("P3b") and names.index("P3b") + 1 == names.index("P4")


@pytest.mark.parametrize("jobs, expected", [(None, 2), (1, 1)])
def test_jobs_caps_the_runs_at_a_time_of_a_figure_that_runs_two(jobs, expected):
    import threading
    import time

    lock, running, most = threading.Lock(), [0], [0]

    def side(rep):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return 1.0

    row = measure_figure(Figure("P0", "a / b", "toy", "<= 1.05", a=side, b=side, jobs=2), reps=2, jobs=jobs)
    assert row.n == 2 and most[0] == expected


def test_the_tracking_probe_measures_each_trial_from_its_start_to_the_flush_after_its_end():
    """P3b's direct measurement: calls outside a trial (the study's own) are not counted; a trial closes at the
    flush that follows its end_trial, not at an earlier flush (a pruned trial's tags, say)."""
    import time

    from tracking_probe import Probe

    class Tracker:  # the study's side of the tracking process, without a process (proc None: no tracker CPU)
        proc = None
        outside = 0.0  # seconds each call sleeps on top: long for the study's own calls

        def _sleep(self, seconds):
            time.sleep(seconds + self.outside)

        def start_trial(self, *a):
            self._sleep(0.01)
            return "stand-in"

        def end_trial(self, *a):
            self._sleep(0.01)

        def flush(self):
            self._sleep(0.02)

        def log_metric_history(self, *a):
            pass

        def log_metrics(self, *a):
            pass

        def set_tags(self, *a):
            self._sleep(0.01)

    probe = Probe()
    probe.wrap(Tracker)
    t = Tracker()
    t.outside = 0.5
    t.flush()  # the study's start: not a trial
    t.outside = 0.0
    for pruned in (False, True):
        t.start_trial()
        if pruned:
            t.set_tags()
            t.flush()
        t.end_trial()
        t.flush()
    t.outside = 0.5
    t.set_tags()  # the study's end
    t.flush()
    assert len(probe.trials) == 2
    first, second = (trial["wait_ms"] for trial in probe.trials)
    assert 40 <= first < 400 and 70 <= second < 400, probe.trials
