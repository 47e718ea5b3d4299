"""`extf <args>` as the command runs it, with its tracker's calls timed: P3b's direct measurement of what tracking
costs each trial.

Run as `python bench/tracking_probe.py tune ...`. Wraps the methods of extf.tracking.process.TrackerProcess (the
study's side of the MLflow tracking process) before the command starts, and measures each trial from its
`start_trial` call to the `flush` that follows its `end_trial` (the trial's run is in the store then):

- wait_ms: wall time the study's process spent inside tracker calls during the trial (sending, pipelining, and
  waiting for the store at the trial's end): what the trial took longer because of tracking;
- study_cpu_ms: CPU time of those calls in the study's thread;
- tracker_cpu_ms: CPU time the tracking process used in the same window (its store writes for the trial), which
  on a machine whose cores are all busy is taken from the training.

At exit, one line `EXTF-TRACKING-PROBE <json list, one object per trial>` on stderr. Nothing of the study changes:
the wrappers only read clocks.
"""

from __future__ import annotations

import json
import sys
import time

from common import process_cpu  # bench/ is this script's directory: on sys.path


class Probe:
    def __init__(self):
        self.trials: list[dict] = []
        self.open: dict | None = None  # the trial being measured
        self.ended = False  # its end_trial was sent: the next flush closes it

    def wrap(self, cls) -> None:
        for name in ("start_trial", "end_trial", "log_metric_history", "log_metrics", "set_tags", "flush"):
            setattr(cls, name, self._timed(getattr(cls, name), name))

    def _timed(self, method, name: str):
        probe = self

        def timed(tracker, *args, **kwargs):
            if name == "start_trial" and probe.open is None:
                pid = tracker.proc.pid if tracker.proc is not None else None
                probe.open = {"pid": pid, "tracker_cpu0": process_cpu(pid) if pid else float("nan"),
                              "wait_ms": 0.0, "study_cpu_ms": 0.0}
                probe.ended = False
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return method(tracker, *args, **kwargs)
            finally:
                trial = probe.open
                if trial is not None:
                    trial["wait_ms"] += (time.perf_counter() - wall) * 1000
                    trial["study_cpu_ms"] += (time.thread_time() - cpu) * 1000
                    if name == "end_trial":
                        probe.ended = True
                    elif name == "flush" and probe.ended:
                        pid = trial.pop("pid")
                        trial["tracker_cpu_ms"] = ((process_cpu(pid) - trial.pop("tracker_cpu0")) * 1000
                                                   if pid else float("nan"))
                        probe.trials.append(trial)
                        probe.open = None

        timed.__name__ = name
        return timed

    def report(self) -> None:
        print("EXTF-TRACKING-PROBE " + json.dumps(self.trials), file=sys.stderr, flush=True)


def main() -> None:
    import atexit

    from extf import cli
    from extf.tracking.process import TrackerProcess

    probe = Probe()
    probe.wrap(TrackerProcess)
    atexit.register(probe.report)  # extf's exit runs the atexit functions before os._exit
    sys.argv = ["extf", *sys.argv[1:]]
    cli.entry()


if __name__ == "__main__":
    main()
