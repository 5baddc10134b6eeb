"""One `skyaudio batch` run: read, plan, run, report; returns the batch's exit code."""

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyaudio_cli import console
from skyaudio_cli.batch.manifest import read_manifest
from skyaudio_cli.batch.plan import Plan, Shard, plan_batch
from skyaudio_cli.batch.results import FAILED, OK, SKIPPED, ResultStream, batch_exit_code
from skyaudio_cli.batch.runner import run_jobs
from skyaudio_cli.batch.signals import Stopped, exit_code_for, stop_signals_raise
from skyaudio_cli.batch.workers import job_device, parse_devices, run_on_devices
from skyaudio_cli.errors import EXIT_OK, EXIT_USAGE


@dataclass(frozen=True)
class BatchOptions:
    manifest: str  # a JSONL file, or "-" for stdin
    results: Path | None = None  # None: stdout
    validate_only: bool = False
    resume: bool = False
    fail_fast: bool = False
    shard: str | None = None  # "K/N"
    devices: str | None = None  # "0,1,2,3" or "cpu,cpu"
    # Settings given on the command line: each line's values for those it does not set itself.
    defaults: dict[str, Any] = field(default_factory=dict)


def run_batch(options: BatchOptions) -> int:
    from skyaudio_cli.media.video import check_output_path

    started = time.monotonic()
    shard = Shard.parse(options.shard) if options.shard else None
    devices = parse_devices(options.devices) if options.devices else None
    if options.results is not None:
        check_output_path(options.results, overwrite=True, suffixes=(".jsonl",))
    lines = read_manifest(options.manifest)
    plan = plan_batch(
        lines, shard=shard, resume=options.resume, device=devices and job_device(devices),
        defaults=options.defaults,
    )  # fmt: skip
    invalid = _report_plan(plan)
    if options.validate_only:
        return _validation_exit_code(plan, invalid)
    if options.fail_fast and (invalid or plan.unavailable):
        plan.to_run = []

    with ExitStack() as stack:
        if options.results is not None:
            options.results.parent.mkdir(parents=True, exist_ok=True)  # as for every output
        sink = sys.stdout if options.results is None else stack.enter_context(options.results.open("w"))
        stream = ResultStream(sink, plan.indices)
        for result in plan.decided:
            stream.add(result)
        try:
            with stop_signals_raise():
                _run(plan, devices, stream, options.fail_fast)
        except (KeyboardInterrupt, Stopped) as stop:
            stream.close()
            console.error_line(
                f"interrupted after {len(stream.results)} results; the job in progress was abandoned and "
                "left no file; run again with --resume to continue"
            )
            return exit_code_for(stop)
        stream.close()
    results = stream.results
    counts = {status: sum(r.status == status for r in results) for status in (OK, SKIPPED, FAILED)}
    console.info(
        f"batch: {counts[OK]} ok, {counts[SKIPPED]} skipped (complete), {counts[FAILED]} failed "
        f"in {time.monotonic() - started:.1f} s"
    )
    return batch_exit_code(results)


def _report_plan(plan: Plan) -> int:
    """Print every invalid line, and each model without weights once, before any model loads;
    returns how many lines are invalid (not counting the jobs of models without weights)."""
    without_weights = {line for model in plan.unavailable for line in model.lines}
    failed = [result for result in plan.decided if result.status == FAILED]
    invalid = [result for result in failed if result.line not in without_weights]
    for result in invalid:
        console.error_line(f"line {result.line}: {result.error}")
    for model in plan.unavailable:
        lines = ", ".join(map(str, model.lines))
        console.error_line(f"{model.error} (line{'s' if len(model.lines) > 1 else ''} {lines})")
    skipped = len(plan.decided) - len(failed)
    console.info(
        f"batch: {len(plan.to_run)} jobs to run, {skipped} already complete, {len(invalid)} invalid, "
        f"{len(without_weights)} for models without weights"
    )
    return len(invalid)


def _validation_exit_code(plan: Plan, invalid: int) -> int:
    """--validate-only: 2 for invalid lines, else the code of the first missing model (3 for weights
    not downloaded, 2 for a name that is no model), else 0."""
    if invalid:
        return EXIT_USAGE
    return plan.unavailable[0].error.exit_code if plan.unavailable else EXIT_OK


def _run(plan: Plan, devices: list[str] | None, stream: ResultStream, fail_fast: bool) -> None:
    jobs = plan.run_order()
    if not jobs:
        return
    if devices is None:
        from skyaudio_cli.pipeline.library_logs import silence_libraries

        silence_libraries()
        run_jobs(jobs, stream.add, fail_fast=fail_fast)
    else:
        run_on_devices(jobs, devices, stream.add, fail_fast=fail_fast)
