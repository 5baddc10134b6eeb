"""What the help shows: exit codes, flags as flags, and no empty error for a bare command."""

import pytest
import typer

from skyaudio_cli.cli.app import app
from skyaudio_cli.errors import EXIT_CODES


def all_commands() -> list[tuple[str, object]]:
    """(command path, click command) of every subcommand, the `weights` ones included."""
    root = typer.main.get_command(app)
    found = []
    for name, command in root.commands.items():
        found.append((name, command))
        for sub_name, sub in getattr(command, "commands", {}).items():
            found.append((f"{name} {sub_name}", sub))
    return found


@pytest.mark.parametrize("args", [[], ["generate"], ["edit-lipsync"], ["extend"], ["batch"], ["weights"]])
def test_a_bare_command_prints_its_help_and_exits_2_without_an_error_line(args, run_cli):
    code, out, err = run_cli(args)
    assert code == 2
    assert "Usage: skyaudio" in out + err
    assert "error:" not in err


def test_help_lists_every_exit_code(run_cli):
    code, out, _ = run_cli(["--help"])
    flat = " ".join(out.split())
    assert code == 0
    for exit_code, meaning in EXIT_CODES.items():
        assert f"{exit_code} {meaning}" in flat


@pytest.mark.parametrize(("path", "command"), all_commands())
def test_flags_read_as_flags(path, command, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one row per option
    code, out, _ = run_cli([*path.split(), "--help"])
    assert code == 0
    flags = ["--help", *(p.opts[0] for p in command.params if getattr(p, "is_flag", False))]
    for flag in flags:
        # The option's own row starts with its name (the batch help's text mentions some flags too).
        (row,) = [line for line in out.splitlines() if line.strip(" │*").startswith(f"{flag} ")]
        assert "<" not in row, row  # no value type such as <bool>


def test_every_boolean_option_is_a_plain_flag():
    """--x only, never a --x/--no-x pair: one convention for every command."""
    flags = {
        f"{path} {option.opts[0]}": option.secondary_opts
        for path, command in all_commands()
        for option in command.params
        if getattr(option, "is_flag", False)
    }
    assert "edit-lipsync --allow-no-face" in flags and "extend --append-only" in flags
    assert {name: secondary for name, secondary in flags.items() if secondary} == {}
