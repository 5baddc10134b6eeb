"""`skyaudio batch`: run a JSON-lines manifest of jobs, loading each model once."""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from skyaudio_cli.cli.settings_options import takes_settings
from skyaudio_cli.tasks.jobs import Settings


@takes_settings()
def batch(
    manifest: Annotated[
        str, typer.Argument(help="JSONL file with one job per line (same fields as the subcommands), or -.")
    ],
    results: Annotated[
        Path | None,
        typer.Option(help="Write the per-job JSON result lines to this .jsonl file instead of stdout."),
    ] = None,
    validate_only: Annotated[
        bool, typer.Option("--validate-only", help="Check every line and exit; load no model.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Skip jobs whose output exists and is complete (a rerun after an interruption)."
        ),
    ] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed job.")] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: run only jobs K, K+N, K+2N, ... (0-based), e.g. $SLURM_ARRAY_TASK_ID/10."),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(help="One worker process per listed GPU, e.g. 0,1,2,3 (cpu,cpu for CPU workers)."),
    ] = None,
    *,
    settings: Settings,
) -> None:
    """Run many jobs in one process: each model loads once, a failing job does not stop the others.

    Example: skyaudio batch jobs.jsonl --resume --results results.jsonl --model infinitetalk

    Generation and runtime options given here are the defaults of every line (of the tasks that
    take them); a line's own values win.

    Exit codes: 0 every job succeeded or was already complete, 6 some jobs failed, 7 none succeeded,
    2 bad manifest/options (or invalid lines with --validate-only), 3 with --validate-only: a model's
    weights are missing, 130/143 interrupted.
    """
    from skyaudio_cli.batch.session import BatchOptions, run_batch

    # Only what the command line changed: an option left at its default must not override a line.
    unset = Settings()
    defaults = {name: value for name, value in asdict(settings).items() if value != getattr(unset, name)}
    code = run_batch(
        BatchOptions(
            manifest=manifest,
            results=results,
            validate_only=validate_only,
            resume=resume,
            fail_fast=fail_fast,
            shard=shard,
            devices=devices,
            defaults=defaults,
        )
    )
    raise typer.Exit(code)
