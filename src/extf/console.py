"""What a user sees by default: extf's own lines. Third-party start-up noise is held back unless EXTF_DEBUG=1.

TensorFlow's native libraries log to file descriptor 2 when they load, before TF_CPP_MIN_LOG_LEVEL applies (absl's
"WARNING: All log messages before absl::InitializeLog() is called ..." and glog-style lines such as
"I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers"). No TensorFlow import here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile

# absl's pre-initialisation banner and glog-style lines (severity I/W, MMDD, time, thread, file:line])
NATIVE_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ "
                          r"\S+:\d+\] |To enable the following instructions: .* rebuild TensorFlow")


def debugging() -> bool:
    return os.environ.get("EXTF_DEBUG") == "1"


@contextlib.contextmanager
def quiet_native_logs():
    """Hold file descriptor 2 in a temporary file for the block; then pass on every line but TensorFlow's start-up
    noise (an error's message included), in order."""
    if debugging():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not NATIVE_NOISE.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras) without its native start-up lines; later imports are free."""
    with quiet_native_logs():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


def freeze_startup_objects() -> None:
    """One full garbage collection, then `gc.freeze()`: the objects alive now (the imports of TensorFlow, Keras,
    MLflow: a million or more) stay out of later collections. Without it, each full collection that a search's
    allocations trigger walks them all (a 20-trial digits study: 29 of them, 6.6 s of its 48 s). Frozen objects are
    still freed when their last reference goes; only a reference cycle among them waits for `gc.unfreeze()`."""
    import gc

    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def startup_objects_frozen():
    """`freeze_startup_objects` for the block; afterwards the frozen objects are collectable again (a sweep runs
    several studies in one process)."""
    import gc

    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def quiet_stdout():
    """A library's chatter on stdout (keras-tuner's "Reloading Tuner from ...") held back unless EXTF_DEBUG=1."""
    if debugging():
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield
