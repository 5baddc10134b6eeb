"""`skyaudio weights ...`: list, download, verify and locate model weights.

Results go to stdout (a table, plain paths, or one JSON object with --json); progress and logs go
to stderr. Failures are raised as SkyaudioError and turned into `error: ...` + exit code by the
main app. Nothing heavy is imported at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer
from rich.markup import escape

from skyaudio_cli import console
from skyaudio_cli.errors import EXIT_WEIGHTS
from skyaudio_cli.weights import fetch_model, get_manifest, resolve_model, verify_model
from skyaudio_cli.weights.manifest import human_size
from skyaudio_cli.weights.resolve import is_downloaded

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

_MODEL = typer.Argument(..., help="Model family name (see `skyaudio weights list`) or a model folder.")
_JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")


@app.command("list")
def list_models(json_output: bool = _JSON) -> None:
    """List the model families with their size, licence and whether they are downloaded."""
    manifest = get_manifest()
    rows = [
        {
            "name": spec.name,
            "default": spec.name == manifest.default,
            "size_bytes": spec.size_bytes,
            "licence": spec.licence,
            "audio_encoder": spec.audio_encoder,
            # Generated families have nothing to download: null, not false.
            "downloaded": None if spec.generated else is_downloaded(spec),
            "description": spec.description,
        }
        for spec in manifest.models.values()
    ]
    if json_output:
        console.emit_json({"status": "ok", "models": rows})
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, object]]) -> None:
    """A table that fits 80 columns; the default and how generated models are made go in a footnote."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    # The description stays in --json: in a table it wraps every row on 80-column terminals. Names
    # and sizes never wrap; the other columns wrap rather than cut words off on narrower terminals.
    for column in ("model", "size", "licence", "audio", "downloaded"):
        table.add_column(column, no_wrap=column in ("model", "size"))
    for row in rows:
        downloaded = {None: "make-tiny", True: "yes", False: "no"}[row["downloaded"]]
        size = human_size(int(row["size_bytes"])) if row["size_bytes"] else "-"
        table.add_row(str(row["name"]), size, str(row["licence"]), str(row["audio_encoder"]), downloaded)
    console = Console(highlight=False)
    console.print(table)
    default = next(row["name"] for row in rows if row["default"])
    console.print(f"default: {default}; make-tiny models: `skyaudio weights make-tiny DIR`")


@app.command()
def fetch(
    model: str = typer.Argument(..., help="Model family to download (see `skyaudio weights list`)."),
    folder: Path | None = typer.Option(
        None, "--dir", help="Download into this folder (one sub-folder per repo) instead of the HF cache."
    ),
    token: str | None = typer.Option(
        None, "--token", help="Hugging Face token for gated repos (default: HF_TOKEN or the saved login)."
    ),
    preset: str | None = typer.Option(
        None,
        "--preset",
        metavar="NAME",
        help="Also fetch this preset's LoRA (e.g. lightx2v for infinitetalk).",
    ),
    json_output: bool = _JSON,
) -> None:
    """Download a model family's weights (resumes interrupted downloads; skips files already there)."""
    from skyaudio_cli.weights.manifest import preset_family

    resolved = fetch_model(preset_family(model, preset) if preset else model, local_dir=folder, token=token)
    if json_output:
        console.emit_json({"status": "ok", **resolved.to_json()})
    else:
        _print_locations(resolved.root, resolved.components)


@app.command()
def verify(model: str = _MODEL, json_output: bool = _JSON) -> None:
    """Check that every file of a model is present and complete; exit code 3 if not."""
    report = verify_model(model)
    if json_output:
        console.emit_json({"status": "ok" if report.ok else "error", **report.to_json()})
    else:
        for problem in report.problems:
            typer.echo(f"{problem.component}\t{problem.path}\t{problem.problem}")
    if report.ok:
        typer.echo(report.summary(), err=True)
    else:
        # The report itself is the result (already on stdout); only the one-line reason goes to stderr.
        # SystemExit, unlike typer.Exit, is not turned into a return value when click runs with
        # standalone_mode=False, so the exit code survives however the app is driven.
        console.error_line(report.summary())
        raise SystemExit(EXIT_WEIGHTS)


@app.command()
def path(model: str = _MODEL, json_output: bool = _JSON) -> None:
    """Print where a model's files are: its folder, or one `component<TAB>path` line per component."""
    resolved = resolve_model(model)
    if json_output:
        console.emit_json({"status": "ok", **resolved.to_json()})
    else:
        _print_locations(resolved.root, resolved.components)


def _print_locations(root: Path | None, components: Mapping[str, Path]) -> None:
    if root is not None:
        typer.echo(str(root))
        return
    for name, location in components.items():
        typer.echo(f"{name}\t{location}")


@app.command("make-tiny")
def make_tiny_command(
    folder: Path = typer.Argument(..., help="Folder to create (must be empty or absent)."),
    family: str = typer.Option(
        "skyreels-v3-a2v",
        "--family",
        help="Release layout to mimic: skyreels-v3-a2v, infinitetalk, humo-17b or humo-1.7b.",
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the random weights."),
    json_output: bool = _JSON,
) -> None:
    """Write a tiny random model in a real release's file layout (tests, smoke runs; outputs noise)."""
    from skyaudio_cli.tiny import check_destination, make_tiny, tiny_family

    check_destination(folder, family)
    from skyaudio_cli.pipeline.library_logs import silence_libraries

    silence_libraries()
    made = make_tiny(folder, layout=family, seed=seed)
    if json_output:
        console.emit_json(
            {"status": "ok", "path": str(made), "family": tiny_family(family), "layout": family}
        )
    else:
        made = escape(str(made))
        console.info(f"wrote tiny random model ({family} layout) to {made}; use it with --model {made}")
