"""`extf worker STUDY_DIR`: a worker process of a distributed search (started by `extf tune tuner.workers=N`, or by
hand on another machine). What a worker does is the tuning layer's (extf.tuning.distributed)."""

from __future__ import annotations

HELP = ("join a distributed search as a worker: KERASTUNER_TUNER_ID=ID KERASTUNER_ORACLE_IP=HOST "
        "KERASTUNER_ORACLE_PORT=PORT extf worker STUDY_DIR  (`extf tune tuner.workers=N` starts local ones)")
INTERRUPTED = "interrupted; its trial run was ended as KILLED."


def run(args: list[str]) -> int:
    # the tuning layer is imported here, not at the top: `extf --help` and the other commands do not pay for it
    from extf.tuning.distributed import worker_main

    return worker_main(args)
