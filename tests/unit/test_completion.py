"""Tab completion of `extf COMMAND [overrides]`: the command word, then Hydra's overrides, in a real bash too."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extf.cli import main as cli_main
from extf.commands import COMMANDS
from extf.completion import candidates, main, query
from tests.conftest import CONF, needs

BASH_WORDBREAKS = " \t\n\"'><=;|&(:"  # bash's default COMP_WORDBREAKS
EXTF = Path(sys.executable).parent / "extf"


@pytest.mark.parametrize("line, expected", [
    ("extf tu", ["tune"]),
    ("extf tr", ["train"]),
    ("extf ev", ["evaluate"]),
    ("extf --h", ["--help"]),
    ("extf zzz", []),
])
def test_command_word(line, expected):
    assert candidates(line) == expected


def test_every_command_is_offered():
    assert candidates("extf ") == sorted([*COMMANDS, "--help"])


def test_config_group_names():
    assert "dataset=" in candidates("extf tune data")
    assert "model=" in candidates("extf train mod")
    assert "hydra/launcher=" in candidates("extf tune hydra/lau")


def test_config_group_options_are_the_yaml_files():
    options = {p.stem for p in (CONF / "dataset").glob("*.yaml")}
    assert {"iris", "digits"} <= options
    assert candidates("extf tune dataset=") == sorted(f"dataset={o}" for o in options)
    assert candidates("extf evaluate dataset=ir") == ["dataset=iris"]
    assert "tuner=hyperband" in candidates("extf tune tuner=")


def test_config_keys_follow_the_overrides_before_the_cursor():
    mlp = candidates("extf tune dataset=iris model=mlp model.")
    assert "model.units=" in mlp and "model.filters=" not in mlp
    cnn = candidates("extf tune model.")  # the default model
    assert "model.filters=" in cnn and "model.units=" not in cnn
    assert candidates("extf train trainer.epo") == ["trainer.epochs="]
    assert candidates("extf predict run_") == ["run_id="]


def test_hydra_flags_and_their_values():
    assert candidates("extf tune --cf") == ["--cfg"]
    assert candidates("extf train --cfg ") == ["all", "hydra", "job"]
    assert "--multirun" in candidates("extf tune --")


def test_options_of_the_other_commands():
    assert candidates("extf ui ") == ["port=", "root="]
    assert candidates("extf runs run_id=abc ") == ["experiment=", "root="]


def test_cursor_position_counts_not_the_end_of_the_line():
    assert candidates("extf tu dataset=iris", point=len("extf tu")) == ["tune"]


def test_unresolvable_values_give_no_candidates_not_a_traceback():
    assert candidates("extf tune paths.output_dir=") == []  # ${hydra:runtime.output_dir} outside a Hydra run
    assert candidates("extf tune model=cnnn model.") == []


def test_bash_gets_the_text_after_its_word_breaks():
    assert query("extf tune dataset=ir", wordbreaks=BASH_WORDBREAKS) == ["iris"]
    assert "iris" in query("extf tune dataset=", wordbreaks=BASH_WORDBREAKS)
    assert query("extf tune dataset=ir") == ["dataset=iris"]  # zsh: whole words
    assert query("extf tu", wordbreaks=BASH_WORDBREAKS) == ["tune"]


def test_query_protocol(monkeypatch, capsys):
    monkeypatch.setenv("COMP_LINE", "extf tune dataset=ir")
    monkeypatch.setenv("COMP_POINT", str(len("extf tune dataset=ir")))
    monkeypatch.delenv("COMP_WORDBREAKS", raising=False)
    assert cli_main(["--shell-completion", "query=bash"]) == 0
    assert capsys.readouterr().out.split() == ["dataset=iris"]


@pytest.mark.parametrize("argv", [["--shell-completion", "bash"], ["-sc", "install=bash"],
                                  ["tune", "--shell-completion", "install=bash"]])
def test_install_script(argv, capsys):
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "complete -o default -F _extf_completion extf" in out
    assert "--shell-completion query=bash" in out


def test_zsh_script_uses_bash_compatibility(capsys):
    assert main(["zsh"]) == 0
    out = capsys.readouterr().out
    assert "bashcompinit" in out and "_extf_completion" in out


def test_bad_shell_is_one_clear_message(capsys):
    assert main(["fish"]) == 2
    assert "Expected bash or zsh" in capsys.readouterr().err


def test_completion_does_not_import_tensorflow():
    code = ("import sys; from extf.completion import candidates\n"
            "assert 'model.units=' in candidates('extf tune model=mlp model.')\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _bash_env() -> dict:
    if not shutil.which("bash") or not EXTF.exists():
        pytest.skip("needs bash and the installed `extf` script")
    return {**os.environ, "PATH": f"{EXTF.parent}{os.pathsep}{os.environ['PATH']}", "PS1": "$ ", "INPUTRC": "/dev/null"}


def test_bash_function_fills_compreply():
    line = "extf tune dataset=ir"
    script = ('eval "$(extf --shell-completion bash)"\n'
              f'COMP_LINE="{line}"; COMP_POINT={len(line)}; COMP_WORDS=(extf tune dataset = ir); COMP_CWORD=4\n'
              '_extf_completion; printf "%s\\n" "${COMPREPLY[@]}"; complete -p extf')
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=_bash_env(),
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["iris", "complete -o default -F _extf_completion extf"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_tab_in_an_interactive_shell(shell, tmp_path):
    """Type `extf tune dataset=ir<TAB>` into a real interactive shell (its line editor) and read the completed line."""
    import pty

    if not shutil.which(shell):
        needs(shell)  # bash is there wherever the tests run
    env = {**_bash_env(), "ZDOTDIR": str(tmp_path), "HOME": str(tmp_path)}
    argv = {"bash": ["bash", "--norc", "--noprofile", "-i"], "zsh": ["zsh", "-f", "-i"]}[shell]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(shell, argv, env)

    def read_until(needle: str, timeout: float = 20) -> str:
        out, end = "", time.monotonic() + timeout
        while needle not in out and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 65536).decode(errors="replace")
                except OSError:
                    break
        return out

    try:
        os.write(fd, f'eval "$(extf --shell-completion {shell})"; echo READ""Y\n'.encode())  # READY only in the output
        assert "READY" in read_until("READY\r\n"), "the shell did not start"
        os.write(fd, b"extf tune dataset=ir\t")
        out = read_until("dataset=iris")
        assert "extf tune dataset=iris" in out, repr(out)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
