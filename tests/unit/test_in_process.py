"""extf_in_process (tests/conftest.py) leaves the test's process as it found it: a command's logging set-up (Hydra's
dictConfig closes every handler alive) cannot close pytest's capture file, and a library's handler made during one
command writes into the stderr of whatever runs next, never into the finished command's StringIO."""

import logging
import sys

import pytest

import extf.cli
from tests.conftest import _CurrentStream, extf_in_process

BAD_EPOCHS = ["train", "dataset=iris", "model=mlp", "trainer.epochs=0"]  # Hydra runs its job (and its logging), no TF


class ClosingHandler(logging.StreamHandler):
    """As absl's PythonHandler: close() closes its stream unless that is sys.stdout/stderr at the time."""

    def close(self):
        if self.stream not in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
            self.stream.close()
        super().close()


@pytest.fixture
def library_logger():
    logger = logging.getLogger("extf-test-library")
    yield logger
    for handler in logger.handlers[:]:
        logger.removeHandler(handler)


def test_a_command_cannot_close_pytest_s_capture_file(tmp_path, library_logger):
    captured = sys.stderr  # pytest's capture file (or the terminal under -s)
    library_logger.addHandler(ClosingHandler())  # made by a library the test imported: bound to pytest's capture
    proc = extf_in_process(BAD_EPOCHS, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "trainer.epochs" in proc.stderr
    assert not captured.closed
    print("pytest's capture still takes lines", file=sys.stderr)


def test_a_handler_made_during_a_command_writes_to_the_next_command_s_stderr(tmp_path, library_logger, monkeypatch):
    run_command = extf.cli.run_command

    def with_a_library_handler(name, args):  # a library configuring its logging during the command (optuna, absl)
        if not library_logger.handlers:
            library_logger.addHandler(ClosingHandler())
        library_logger.warning("library line %d", len(library_logger.handlers))
        return run_command(name, args)

    monkeypatch.setattr(extf.cli, "run_command", with_a_library_handler)
    root_handlers = logging.getLogger().handlers[:]  # pytest's
    first = extf_in_process(BAD_EPOCHS, tmp_path)
    assert logging.getLogger().handlers == root_handlers
    assert "library line" in first.stderr
    assert isinstance(library_logger.handlers[0].stream, _CurrentStream)
    second = extf_in_process(BAD_EPOCHS, tmp_path)
    assert "library line" in second.stderr, second.stderr
    assert second.returncode == 2
