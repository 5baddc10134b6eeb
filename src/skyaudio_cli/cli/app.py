"""The `skyaudio` command: wiring of subcommands and the error -> exit-code contract.

Only light modules are imported here; torch and diffusers load inside the commands that need
them, so `skyaudio --help` answers instantly.
"""

import sys

import typer

try:  # typer >= 0.24 ships its own copy of click and raises that copy's exceptions
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses the click package
    from click import exceptions as click_exceptions

from typer.core import TyperOption

from skyaudio_cli import __version__, console
from skyaudio_cli.batch.signals import Stopped, stop_signals_raise
from skyaudio_cli.cli.batch import batch
from skyaudio_cli.cli.doctor import doctor
from skyaudio_cli.cli.training_commands import dataset_app, train
from skyaudio_cli.cli.video_commands import edit_lipsync, extend, generate
from skyaudio_cli.cli.weights import app as weights_app
from skyaudio_cli.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE, SkyaudioError

# typer's help labels every option with its type, flags included (`--overwrite -y <bool>`), as if
# they took a value; a flag is shown bare, as click and argparse show it.
_type_label = TyperOption.display_type_rich
TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _type_label(self, ctx)

app = typer.Typer(
    name="skyaudio",
    help="Talking-portrait videos from speech: generate, re-lip-sync and extend videos.",
    epilog="Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + ".",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown joins the wrapped lines of a docstring paragraph, as the terminal's width needs.
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skyaudio {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Options of `skyaudio` itself, before the subcommand."""


app.command(no_args_is_help=True)(generate)
app.command("edit-lipsync", no_args_is_help=True)(edit_lipsync)
app.command(no_args_is_help=True)(extend)
app.command(no_args_is_help=True)(batch)
app.command()(doctor)
app.command(no_args_is_help=True)(train)
app.add_typer(dataset_app, name="dataset", help="Build fine-tuning datasets from talking videos.")
app.add_typer(weights_app, name="weights", help="List, download, verify and locate model weights.")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and turn every failure into a one-line error."""
    wants_json = "--json" in (argv if argv is not None else sys.argv[1:])
    failure = None
    try:
        with stop_signals_raise():
            # Outside standalone mode click returns (not raises) the code of `typer.Exit(code)`.
            returned = app(args=argv, prog_name="skyaudio", standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except click_exceptions.NoArgsIsHelpError as bare:
        # A command given no arguments: its help is the answer (typer has printed it already).
        if bare.format_message().strip():
            typer.echo(bare.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except click_exceptions.UsageError as bad:
        failure = _usage_message(bad), EXIT_USAGE
    except SkyaudioError as error:
        failure = str(error), error.exit_code
    except Stopped as stop:
        failure = f"{stop.reason}: the job was abandoned and left no partial file", stop.exit_code
    except (KeyboardInterrupt, typer.Abort):
        failure = "interrupted", EXIT_INTERRUPTED
    # Reported only once the exception is gone: its traceback pins the frames of generators whose
    # cleanup (stopping ffmpeg, removing temporary files) runs when they are released.
    if failure is not None:
        _fail(*failure, wants_json)
    sys.exit(returned if isinstance(returned, int) else 0)


def _usage_message(bad: click_exceptions.UsageError) -> str:
    command = bad.ctx.command_path if bad.ctx is not None else "skyaudio"
    return f"{bad.format_message()} (see `{command} --help`)"


def _fail(message: str, exit_code: int, wants_json: bool) -> None:
    console.error_line(message)
    if wants_json:
        console.emit_json({"status": "error", "exit_code": exit_code, "error": message})
    sys.exit(exit_code)
