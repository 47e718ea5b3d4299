"""The commands of `extf`, one module each. A command module has `run(args: list[str]) -> int` and a one-line
`HELP`; optionally `INTERRUPTED` (what Ctrl-C ended, said by the error boundary), `HYDRA = True` (it composes a
config: Hydra's options and overrides) or `OPTIONS` (its key=value options, for tab completion).

The registry below is built from those modules, in the order `extf --help` lists them; `extf.cli` dispatches through
it. Errors are not printed by the commands: an `ExtfError` reaches the one boundary in `extf.cli`. The modules import
nothing heavy at their top, so `extf --help` and `extf runs` start fast.
"""

from __future__ import annotations

from types import ModuleType

from extf.commands import evaluate, init, predict, report, runs, server, train, tune, ui, worker

COMMANDS: dict[str, ModuleType] = {module.__name__.rpartition(".")[2]: module for module in (
    train, tune, evaluate, predict, runs, report, ui, server, init, worker)}
