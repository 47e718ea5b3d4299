"""The command registry and the one error boundary of `extf` (extf.cli.run_command)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from extf import cli
from extf.commands import COMMANDS
from extf.errors import ConfigError, DataError

EXPECTED = {"train", "tune", "evaluate", "predict", "runs", "report", "ui", "server", "init", "worker"}


def test_every_command_is_a_module_with_run_and_a_one_line_help():
    assert set(COMMANDS) == EXPECTED
    for name, module in COMMANDS.items():
        assert callable(module.run), name
        assert module.HELP and "\n" not in module.HELP, name
        assert module.__name__ == f"extf.commands.{name}"


def test_help_lists_the_registry(capsys):
    assert cli.main(["--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # the help wraps long lines
    for name, module in COMMANDS.items():
        assert f"{name} {' '.join(module.HELP.split())}" in shown, name


def fake(monkeypatch, raised: BaseException, **attrs) -> None:
    def run(args):
        raise raised

    monkeypatch.setitem(COMMANDS, "fake", SimpleNamespace(run=run, HELP="a stand-in", **attrs))


@pytest.mark.parametrize("error", [ConfigError("bad value. Received: x=1"), DataError("bad data. Received: y")])
def test_an_extf_error_is_one_line_and_exit_2(monkeypatch, capsys, error):
    monkeypatch.delenv("EXTF_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    fake(monkeypatch, error)
    assert cli.run_command("fake", []) == 2
    err = capsys.readouterr().err
    assert err == f"extf fake: error: {error}\n"


def test_debug_adds_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("EXTF_DEBUG", "1")
    fake(monkeypatch, ConfigError("bad value. Received: x=1"))
    assert cli.run_command("fake", []) == 2
    err = capsys.readouterr().err
    assert err.startswith("extf fake: error: bad value") and "Traceback" in err


def test_an_unexpected_error_is_an_internal_error_exit_1(monkeypatch, capsys):
    monkeypatch.delenv("EXTF_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    fake(monkeypatch, RuntimeError("boom"))
    assert cli.run_command("fake", []) == 1
    err = capsys.readouterr().err
    assert "extf fake: internal error: RuntimeError: boom" in err and "Traceback" not in err


def test_an_interrupt_says_what_the_command_ended_and_exits_130(monkeypatch, capsys):
    fake(monkeypatch, KeyboardInterrupt(), INTERRUPTED="interrupted; its runs were ended as KILLED.")
    assert cli.run_command("fake", []) == 130
    assert capsys.readouterr().err == "extf fake: interrupted; its runs were ended as KILLED.\n"
    fake(monkeypatch, KeyboardInterrupt())
    assert cli.run_command("fake", []) == 130
    assert capsys.readouterr().err == "extf fake: interrupted.\n"


def test_a_command_s_exit_code_passes_through(monkeypatch):
    monkeypatch.setitem(COMMANDS, "fake", SimpleNamespace(run=lambda args: len(args), HELP="a stand-in"))
    assert cli.run_command("fake", ["a", "b", "c"]) == 3


def test_help_into_a_closed_pipe_ends_quietly():
    """`extf --help | head -1`: when the reader has gone, no traceback (exit 141, as a shell reports SIGPIPE)."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before extf writes a byte
    proc = subprocess.run([sys.executable, "-m", "extf.cli", "--help"], stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    os.close(write)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("debug", ["", "1"])
def test_library_info_logs_are_held_back_unless_debugging(tmp_path, debug):
    """Hydra's job logging would print every library's INFO line (matplotlib's first-run "generated new
    fontManager"); extf shows warnings and up, everything with EXTF_DEBUG=1. In a process of its own: Hydra's
    logging set-up outlives a test."""
    import os
    import subprocess
    import sys

    code = ("import logging\n"
            "from extf.commands import hydra_app\n"
            "def job(cfg, overrides, out):\n"
            "    logging.getLogger('matplotlib.font_manager').info('generated new fontManager')\n"
            "    logging.getLogger('some.library').warning('a warning stays')\n"
            "raise SystemExit(hydra_app.run('train', [], job))\n")
    env = {**os.environ, "EXTF_ROOT": str(tmp_path), "EXTF_DEBUG": debug}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "a warning stays" in text
    assert ("generated new fontManager" in text) == bool(debug)


def test_an_interrupt_dropped_in_c_code_prints_nothing_other_errors_still_print(monkeypatch):
    """Python hands an exception that C code could not raise to sys.unraisablehook, which prints a traceback. A
    Ctrl-C that TensorFlow's C++ swallowed arrives there as a SystemError whose context is the KeyboardInterrupt (the
    study still stops: errors.raise_if_interrupted); that one is not passed on to be printed, any other still is."""
    import signal
    import sys

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its handlers
    printed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: printed.append(info.exc_value))  # Python's printer
    cli._terminate_as_interrupt()

    def unraisable(error: BaseException):
        return SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None, err_msg=None, object=None)

    try:
        raise KeyboardInterrupt("signal 2")
    except KeyboardInterrupt:
        try:
            raise SystemError("<built-in function __import__> returned a result with an exception set")
        except SystemError as e:
            dropped = e
    sys.unraisablehook(unraisable(dropped))
    sys.unraisablehook(unraisable(KeyboardInterrupt("signal 2")))
    assert printed == []
    real = ValueError("a real one")
    sys.unraisablehook(unraisable(real))
    assert printed == [real]
