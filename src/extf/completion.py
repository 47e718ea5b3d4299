"""Tab completion for `extf COMMAND [overrides]` in bash and zsh.

Hydra's own `--shell-completion` assumes the app is the whole command line; `extf` puts a COMMAND first. This adapter
completes the COMMAND word itself, then hands the words after it to Hydra's completion (config groups `dataset=`, their
options `dataset=iris`, config keys `model.units=`, Hydra flags) for the commands that compose a config (train / tune /
evaluate / predict: HYDRA in their module), and offers the key=value options of the others (OPTIONS in their module).
Install it with `eval "$(extf --shell-completion bash)"` (or `zsh`).

Protocol: the shell function runs `COMP_LINE=... COMP_POINT=... COMP_WORDBREAKS=... extf --shell-completion query=bash`,
which prints one candidate per line: the whole word, or with bash only what follows the word's last `=` or `:` (the
part bash replaces). Only Hydra and the YAML files of extf's conf/ and the project's are read: nothing here imports TensorFlow or MLflow.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

from extf.commands import COMMANDS
from extf.commands.hydra_app import conf_dir, open_project

HYDRA_FLAGS = ("--help", "--hydra-help", "--cfg", "--resolve", "--package", "--multirun", "-m", "--info")
FLAG_VALUES = {
    "--cfg": ("job", "hydra", "all"), "-c": ("job", "hydra", "all"),
    "--info": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
}
SHELLS = ("bash", "zsh")

BASH_SCRIPT = r"""# extf tab completion. Install: eval "$(extf --shell-completion bash)" (or zsh)
_extf_completion() {
    # COMP_WORDBREAKS: bash replaces only the text after the last `=` or `:`, so extf prints `iris` for `dataset=ir`
    local exe=${COMP_LINE%%[[:space:]]*} candidate
    COMPREPLY=()
    while IFS= read -r candidate; do
        [[ -z $candidate ]] && continue
        # zsh's bashcompinit has no compopt: with `complete -o nospace` a trailing space marks a finished word
        [[ -n ${ZSH_VERSION-} && $candidate != *[=./] ]] && candidate+=" "
        COMPREPLY+=("$candidate")
    done < <(COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" COMP_WORDBREAKS="${COMP_WORDBREAKS-}" \
             command "$exe" --shell-completion query=bash 2>/dev/null)
    # no space after `dataset=`, `model.` or `hydra/`: the word goes on
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[=./] ]]; then
        type compopt >/dev/null 2>&1 && compopt -o nospace
    fi
    return 0
}
"""
REGISTER = {"bash": "complete -o default -F _extf_completion extf\n",
            "zsh": "complete -o nospace -o default -F _extf_completion extf\n"}

ZSH_PREAMBLE = """# extf tab completion (zsh, through bash compatibility). Install: eval "$(extf --shell-completion zsh)"
autoload -U +X compinit && { (( ${+_comps} )) || compinit; }
autoload -U +X bashcompinit && bashcompinit
"""

USAGE = """usage: extf --shell-completion [install=]bash|zsh    print the script to eval in ~/.bashrc or ~/.zshrc
       extf --shell-completion uninstall=bash|zsh     print the commands that remove it
       COMP_LINE='extf tune data' extf --shell-completion query=bash   the candidates, one per line"""


def candidates(line: str, point: int | None = None) -> list[str]:
    """The completions of the word under the cursor of `line` (a whole `extf ...` command line), sorted."""
    line = line[: len(line) if point is None else max(0, min(point, len(line)))]
    words = line.split()
    args = words[1:]  # without the program name
    current = args.pop() if args and not line[-1].isspace() else ""
    if not words:
        return []
    if not args:  # the COMMAND word
        return sorted(c for c in (*COMMANDS, "--help") if c.startswith(current))
    command, rest = COMMANDS.get(args[0]), args[1:]
    if getattr(command, "HYDRA", False):
        return hydra_candidates(rest, current)
    given = {a.partition("=")[0] + "=" for a in rest}
    return sorted(o for o in getattr(command, "OPTIONS", ()) if o.startswith(current) and o not in given)


def query(line: str, point: int | None = None, wordbreaks: str = "") -> list[str]:
    """candidates() as the shell inserts them: bash replaces only the text after the last of its COMP_WORDBREAKS
    (`=`, `:`) in the word, so `extf tune dataset=ir` gets `iris`. zsh passes no wordbreaks and gets whole words."""
    line = line[: len(line) if point is None else max(0, min(point, len(line)))]
    word = "" if not line or line[-1].isspace() else line.split()[-1]
    breaks = [i for i, ch in enumerate(word) if ch in wordbreaks and not ch.isspace()]
    cut = breaks[-1] + 1 if breaks else 0
    return [c[cut:] if c.startswith(word[:cut]) else c for c in candidates(line)]


def hydra_candidates(rest: list[str], current: str) -> list[str]:
    """Hydra's completion of `current` after the overrides/flags `rest` of a train | tune | evaluate | predict line."""
    if rest and rest[-1] in FLAG_VALUES:
        return sorted(v for v in FLAG_VALUES[rest[-1]] if v.startswith(current))
    if current.startswith("-"):
        return sorted(f for f in HYDRA_FLAGS if f.startswith(current))
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.utils import create_config_search_path
        from hydra.plugins.completion_plugin import DefaultCompletionPlugin

        _, rest = open_project(rest)  # the project's conf/ and experiments/ (before extf's) offer their options too
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(conf_dir())))
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return DefaultCompletionPlugin(loader)._query(config_name="config", line=" ".join([*rest, current]))
    except (Exception, SystemExit):
        # an override that does not compose yet, a value with an interpolation Hydra cannot resolve here
        # (paths.output_dir=${hydra:...}), argparse refusing a flag: no candidates rather than a traceback in the shell
        return []


def script(shell: str) -> str:
    return (ZSH_PREAMBLE if shell == "zsh" else "") + BASH_SCRIPT + REGISTER[shell]


def main(args: list[str]) -> int:
    """`extf --shell-completion [install=|uninstall=|query=]bash|zsh`."""
    action, _, shell = (args[0] if args else "").rpartition("=")
    action = action or "install"
    if action not in ("install", "uninstall", "query") or shell not in SHELLS or len(args) != 1:
        print(f"extf: error: --shell-completion takes one shell. Expected bash or zsh, optionally as install=SHELL, "
              f"uninstall=SHELL or query=SHELL. Received: {' '.join(args)!r}\n{USAGE}", file=sys.stderr)
        return 2
    if action == "install":
        print(script(shell), end="")
    elif action == "uninstall":
        print("complete -r extf 2>/dev/null; unset -f _extf_completion")
    else:
        line = os.environ.get("COMP_LINE", "")
        point = os.environ.get("COMP_POINT", "")
        for c in query(line, int(point) if point.isdigit() else None, os.environ.get("COMP_WORDBREAKS", "")):
            print(c)
    return 0
