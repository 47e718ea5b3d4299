"""User-facing errors.

Every error a user can cause (config, data, paths, command line) is raised as an `ExtfError` whose message says
what was wrong, what was expected, how to fix it, and the value received (Keras style). The CLI prints the message
alone and exits with a non-zero code; `EXTF_DEBUG=1` adds the traceback.
"""


class ExtfError(Exception):
    """Base class of the errors that are the user's to fix."""

    exit_code = 2


class ConfigError(ExtfError):
    """A configuration value, override or file is wrong."""


class DataError(ExtfError):
    """A dataset, data file or array is missing or unusable."""


class UserCodeError(ExtfError):
    """A project's own function (a `_target_` opted in with allow_targets) raised or returned the wrong thing; the
    message names the function and shows its own traceback frames."""


class TrackingUnavailable(ExtfError):
    """The MLflow tracking server stopped answering (after retries): the study stops; what was logged stays."""


_interrupt: list[str] = []  # the signal that asked extf to stop, once one did


def note_interrupt(signum: int) -> None:
    _interrupt.append(f"signal {signum}")


def interrupted() -> bool:
    """Whether a SIGINT/SIGTERM has asked this process to stop."""
    return bool(_interrupt)


def raise_if_interrupted() -> None:
    """Python drops a KeyboardInterrupt that lands in a garbage-collector callback ("Exception ignored in ..."):
    training checks here at each epoch's end, so such a Ctrl-C or SIGTERM still stops the study."""
    if _interrupt:
        raise KeyboardInterrupt(_interrupt[-1])


def in_chain(error: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of type `kind` in `error`'s chain (itself, then its __cause__ or __context__), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
