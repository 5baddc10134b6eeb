"""Before any model loads: select this shard's jobs, validate every one, and decide what to skip.

Every invalid line is known (and reported together) before the first job starts; jobs whose
output is already complete are skipped under `--resume`.
"""

import dataclasses
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyaudio_cli.batch.completion import incomplete_reason
from skyaudio_cli.batch.manifest import BatchJob, ManifestLine, parse_line
from skyaudio_cli.batch.results import FAILED, SKIPPED, JobResult
from skyaudio_cli.errors import InputError, SkyaudioError
from skyaudio_cli.media.atomic import remove_stale_partials
from skyaudio_cli.tasks.registry import task_spec
from skyaudio_cli.tasks.resolve import resolve_validated
from skyaudio_cli.weights.manifest import base_family


@dataclass(frozen=True)
class Shard:
    """`K/N`: the jobs whose index is K modulo N, so N machines share a manifest with no coordinator."""

    k: int
    n: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        k, _, n = text.partition("/")
        if not (k.isdigit() and n.isdigit()) or int(n) == 0:
            raise InputError(f"--shard {text}: expected K/N with whole numbers, e.g. 0/4")
        if int(k) >= int(n):
            raise InputError(f"--shard {text}: K must be between 0 and N-1")
        return cls(int(k), int(n))

    def selects(self, index: int) -> bool:
        return index % self.n == self.k


@dataclass(frozen=True)
class UnavailableModel:
    """A model whose weights are not here (or a name that is no model): every job of it fails."""

    model: str
    error: SkyaudioError
    lines: tuple[int, ...]


@dataclass
class Plan:
    to_run: list[BatchJob]
    decided: list[JobResult]  # failed validation, or skipped as complete
    unavailable: list[UnavailableModel] = dataclasses.field(default_factory=list)

    @property
    def indices(self) -> list[int]:
        return sorted([job.index for job in self.to_run] + [result.index for result in self.decided])

    def run_order(self) -> list[BatchJob]:
        """The jobs grouped by model, in order of first appearance.

        Loading a model evicts the loaded one (one 19B model fills a GPU), so a manifest that
        alternates models would reload them job after job; grouped, each loads once. Results
        are still written in manifest order.
        """

        def loads(job: BatchJob) -> str:  # a preset runs on its base family's loaded model
            return base_family(job.job.settings.family)

        first_seen: dict[str, int] = {}
        for job in self.to_run:
            first_seen.setdefault(loads(job), len(first_seen))
        return sorted(self.to_run, key=lambda job: first_seen[loads(job)])


def plan_batch(
    lines: list[ManifestLine],
    *,
    shard: Shard | None,
    resume: bool,
    device: str | None,
    defaults: Mapping[str, Any] | None = None,
) -> Plan:
    """`device` (from --devices) replaces every job's device before it is validated; `defaults` are
    settings for the lines that do not set them (see `parse_line`)."""
    parsed: dict[int, BatchJob | SkyaudioError] = {}
    for line in lines:
        try:
            parsed[line.index] = parse_line(line, defaults)
        except SkyaudioError as bad:
            parsed[line.index] = bad
    # Over the whole manifest, not just this shard: two shards writing one file would race.
    first_writer = _first_writers(parsed.values())

    def plan_line(line: ManifestLine) -> BatchJob | JobResult:
        outcome = parsed[line.index]
        try:
            if isinstance(outcome, SkyaudioError):
                raise outcome
            return _plan_job(outcome, first_writer, resume=resume, device=device)
        except SkyaudioError as bad:
            return _invalid(line, outcome, bad)

    selected = [line for line in lines if shard is None or shard.selects(line.index)]
    plan = Plan(to_run=[], decided=[])
    # Validation waits on ffmpeg probes (subprocesses), so threads overlap them: ~75 ms a line
    # one after another on the 2-core sandbox (bench/RESULTS.md).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for planned in pool.map(plan_line, selected):
            (plan.decided if isinstance(planned, JobResult) else plan.to_run).append(planned)
    _check_models(plan)
    return plan


def _check_models(plan: Plan) -> None:
    """Each model once: its weights must be on this machine, or all its jobs fail with one reason;
    then each job against its model's family (a HuMo model cannot extend, ...), as the CLI does."""
    from skyaudio_cli.weights import resolve_model

    for model in dict.fromkeys(job.job.settings.model for job in plan.to_run):
        try:
            resolve_model(model)
        except SkyaudioError as bad:
            jobs = [job for job in plan.to_run if job.job.settings.model == model]
            plan.to_run = [job for job in plan.to_run if job.job.settings.model != model]
            plan.unavailable.append(UnavailableModel(model, bad, tuple(job.line for job in jobs)))
            plan.decided.extend(_failed(job, bad) for job in jobs)
    runnable = []
    for job in plan.to_run:
        try:
            runnable.append(dataclasses.replace(job, resolved=resolve_validated(job.task, job.job)))
        except SkyaudioError as bad:
            plan.decided.append(_failed(job, bad))
    plan.to_run = runnable


def _failed(job: BatchJob, bad: SkyaudioError) -> JobResult:
    return JobResult(job.line, job.index, job.task, FAILED, str(job.job.output), bad.exit_code, str(bad))


def _plan_job(
    parsed: BatchJob, first_writer: dict[Path, int], *, resume: bool, device: str | None
) -> BatchJob | JobResult:
    """The job to run, or its result when it is skipped as complete; raises when it is invalid."""
    job = parsed.job if device is None else _on_device(parsed.job, device)
    earlier = first_writer[job.output.resolve()]
    if earlier != parsed.line:
        raise InputError(f"output {job.output}: line {earlier} writes the same file")
    spec = task_spec(parsed.task)
    if resume:
        # A killed run (SIGKILL, power loss) could not remove its temporary files; a job that is
        # skipped below would never write (and clean) its output again.
        remove_stale_partials(job.output)
    if job.output.exists() and resume:
        reason = incomplete_reason(job.output, spec.expected_seconds(job))
        if reason is None:
            return JobResult(parsed.line, parsed.index, parsed.task, SKIPPED, str(job.output))
        if not job.overwrite:
            raise InputError(
                f"output file {job.output} exists but is not a complete result ({reason}); delete it "
                'or set "overwrite": true'
            )
    elif job.output.exists() and not job.overwrite:
        raise InputError(
            f'output file already exists: {job.output} (set "overwrite": true on the line to replace it, '
            "or pass --resume to skip complete outputs)"
        )
    spec.validate(job)
    return dataclasses.replace(parsed, job=job)


def _invalid(line: ManifestLine, parsed: BatchJob | SkyaudioError, bad: SkyaudioError) -> JobResult:
    if isinstance(parsed, SkyaudioError):  # the line did not even parse: no task, no output
        return JobResult(line.number, line.index, None, FAILED, None, bad.exit_code, error=str(bad))
    output = str(parsed.job.output)
    return JobResult(line.number, line.index, parsed.task, FAILED, output, bad.exit_code, error=str(bad))


def _first_writers(parsed) -> dict[Path, int]:
    first: dict[Path, int] = {}
    for outcome in parsed:
        if isinstance(outcome, BatchJob):
            first.setdefault(outcome.job.output.resolve(), outcome.line)
    return first


def _on_device(job, device: str):
    return dataclasses.replace(job, settings=dataclasses.replace(job.settings, device=device))
