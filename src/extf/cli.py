"""The `extf` command: `extf COMMAND [options]`, dispatched to the command modules of extf.commands.

This module is dispatch only: the command line, the process set-up every command shares, and the one error boundary
(an `ExtfError` becomes one line and its exit code, 2; Ctrl-C or SIGTERM ends with 130; anything else is an internal
error, exit 1). `EXTF_DEBUG=1` adds the traceback. Nothing here imports TensorFlow, so `extf --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import textwrap
import traceback

from extf.commands import COMMANDS
from extf.completion import main as completion_main
from extf.errors import ExtfError, in_chain, note_interrupt

USAGE = """\
usage: extf COMMAND [hydra options] [key=value overrides...]

ExTensorflow: configuration-driven experiments and hyperparameter tuning for TensorFlow/Keras.

commands:
{commands}

examples:
  extf train
  extf train model=mlp dataset=iris optimizer.learning_rate=0.01
  extf train dataset=nabiya model=rnn model.cell=lstm model.stateful=true trainer.batch_size=1
  extf train --cfg job                 print the composed config and exit
  extf train --help                    config groups and their options
  extf tune -m dataset=digits,iris model=mlp optimizer=adam,sgd

In a project (a folder with extf.yaml, conf/ or experiments/; `extf init` writes one), the project's conf/ and
experiments/ come before extf's own options, and its packages listed in extf.yaml's allow_targets may be _target_s;
--config-dir DIR names another config folder. See docs/own-project.md.

Tab completion of commands and overrides: eval "$(extf --shell-completion bash)"   (or zsh)
extf --version prints the installed version.
Set EXTF_DEBUG=1 to see tracebacks.
"""
COMPLETION_FLAGS = ("--shell-completion", "-sc")


def usage() -> str:
    """extf's help: the commands and their one-line help, from the registry."""
    lines = [textwrap.fill(module.HELP, width=118, initial_indent=f"  {name:<10}", subsequent_indent=" " * 12,
                           break_on_hyphens=False, break_long_words=False)
             for name, module in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("--version", "-V"):
        from extf import __version__

        print(f"extf {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command in COMPLETION_FLAGS or (command in COMMANDS and set(COMPLETION_FLAGS) & set(rest)):
        # extf's completion: Hydra's own would complete a command named `extf-tune`
        return completion_main([a for a in rest if a not in COMPLETION_FLAGS])
    if command not in COMMANDS:
        print(f"extf: error: unknown command {command!r}. Expected one of: {', '.join(COMMANDS)}. "
              f"Run `extf --help` for usage. Received: {command!r}", file=sys.stderr)
        return 2
    _environment_defaults()
    _cap_malloc_arenas()
    _terminate_as_interrupt()
    return run_command(command, rest)


def run_command(name: str, args: list[str]) -> int:
    """The one error boundary: the command's exit code, or the one line that says how it ended."""
    command = COMMANDS[name]
    try:
        return command.run(args)
    except KeyboardInterrupt:
        print(f"extf {name}: {getattr(command, 'INTERRUPTED', 'interrupted.')}", file=sys.stderr)
        return 130
    except ExtfError as e:
        print(f"extf {name}: error: {e}", file=sys.stderr)
        _show_traceback(e)
        return e.exit_code
    except Exception as e:
        details = e.details() if callable(getattr(e, "details", None)) else None  # a gRPC error's own text
        print(f"extf {name}: internal error: {type(e).__name__}: {details or e}\nThis is a bug in extf or an "
              f"unexpected environment; EXTF_DEBUG=1 shows the traceback.", file=sys.stderr)
        _show_traceback(e)
        return 1


def _show_traceback(e: BaseException) -> None:
    # HYDRA_FULL_ERROR=1, Hydra's own switch for full tracebacks, counts as EXTF_DEBUG=1
    if os.environ.get("EXTF_DEBUG") == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exception(e)


def _environment_defaults() -> None:
    """TensorFlow's C++ logging and oneDNN off; MLflow's usage telemetry off (extf never uses the network at run
    time, and the telemetry thread's flush at exit cost every command about half a second here); MLflow's artifact
    download progress bars off unless EXTF_DEBUG=1 (`extf evaluate` and `extf predict` print extf's lines only)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if os.environ.get("EXTF_DEBUG") != "1":
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


MALLOC_ARENAS = 2  # glibc's heaps at most in an extf process (its default: 8 per core)


def _cap_malloc_arenas() -> None:
    """At most MALLOC_ARENAS malloc heaps in this process (glibc on Linux; set before TensorFlow starts threads).
    glibc gives threads that allocate at the same time heaps of their own, up to 8 per core, and each keeps what its
    threads freed: TensorFlow's thread pools and tf.data's parallel decoding spread a training's tensors over many,
    ~60 MB more resident memory here (bench P8) for no measurable speed. MALLOC_ARENA_MAX, when set, decides."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        pass


def _terminate_as_interrupt() -> None:
    """SIGTERM (a scheduler, `kill`) ends the runs like Ctrl-C does: KILLED, never left RUNNING. Both are noted, so
    training still stops when Python drops the KeyboardInterrupt (errors.raise_if_interrupted)."""
    import signal

    def handler(signum, frame):
        note_interrupt(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    default_hook = sys.unraisablehook

    def unraisable(info):  # the dropped interrupt is handled above: no "Exception ignored ... Traceback" for it,
        # nor for what it became in C code (seen: TensorFlow's nest.flatten, "SystemError: <built-in function
        # __import__> returned a result with an exception set", the interrupt as its context)
        if in_chain(info.exc_value, KeyboardInterrupt) is None:
            default_hook(info)

    sys.unraisablehook = unraisable


def entry() -> None:
    """The `extf` console script: main(), then a quick exit. Exit handlers run as usual (atexit: MLflow's, logging's,
    weakref finalizers), but the interpreter skips tearing down TensorFlow's,
    Keras' and MLflow's thousands of modules one by one: 0.5 to 1.5 s of every command here, for nothing."""
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except BrokenPipeError:  # `extf --help | head`: the reader left; nothing more can be said, as for any tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python prints it
        print(code, file=sys.stderr)
        code = 1
    _exit_now(code or 0)


def _exit_now(code: int) -> None:
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)  # a thread still working (a sweep's launcher, say): the interpreter's own exit waits for it
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
