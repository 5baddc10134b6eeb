"""Run jobs one after another with shared loaded models; one job's failure never stops the others.

A failing job is turned into a result (its error class, its message) and the next job runs. After
an out-of-memory the memory the failed job held is given back first; the loaded model stays, as
reloading a 19B model costs minutes and the next job may well fit.
"""

import time
from collections.abc import Callable

from rich.markup import escape

from skyaudio_cli import console
from skyaudio_cli.batch.manifest import BatchJob
from skyaudio_cli.batch.results import FAILED, OK, JobResult
from skyaudio_cli.errors import EXIT_RUNTIME, SkyaudioError
from skyaudio_cli.tasks.registry import task_spec


def run_jobs(jobs: list[BatchJob], on_result: Callable[[JobResult], None], *, fail_fast: bool) -> None:
    from skyaudio_cli.pipeline.cache import PipelineCache

    pipelines = PipelineCache()
    for position, job in enumerate(jobs, 1):
        announce(position, len(jobs), job)
        result = run_one(job, pipelines)
        on_result(result)
        if fail_fast and result.status == FAILED:
            return


def announce(position: int, total: int, job: BatchJob, device: str | None = None) -> None:
    where = f" on device {device}" if device else ""
    destination = escape(str(job.job.output))
    console.info(f"[bold]\\[{position}/{total}][/] line {job.line}: {job.task} -> {destination}{where}")


def run_one(job: BatchJob, pipelines) -> JobResult:
    """Run one planned job (as `plan_batch` resolved it) with the shared `pipelines` (PipelineCache);
    every Exception becomes its result."""
    started = time.monotonic()
    loaded_before = pipelines.load_seconds
    details, error, exit_code, out_of_memory = {}, None, 0, False
    try:
        details = task_spec(job.task).run(job.resolved, pipelines)
    except SkyaudioError as failure:
        error, exit_code = str(failure), failure.exit_code
    except Exception as failure:  # noqa: BLE001 - a bug in one job must not end the batch
        out_of_memory = is_out_of_memory(failure)
        error = _one_line(failure, out_of_memory)
        exit_code = EXIT_RUNTIME
    if out_of_memory:
        # Outside the except block: only now is the traceback, which pins the job's tensors, gone.
        from skyaudio_cli.pipeline.cache import release_memory

        release_memory()
    if error is not None:
        console.error_line(f"line {job.line}: {error}")
    return JobResult(
        line=job.line,
        index=job.index,
        task=job.task,
        status=FAILED if error else OK,
        output=str(job.job.output),
        exit_code=exit_code,
        error=error,
        seconds=time.monotonic() - started,
        load_seconds=pipelines.load_seconds - loaded_before,
        details=details,
    )


def is_out_of_memory(failure: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError is a RuntimeError saying "CUDA out of memory"; other backends
    # (MPS, the CPU allocator) raise plain RuntimeErrors with the same words.
    return isinstance(failure, RuntimeError) and "out of memory" in str(failure)


def _one_line(failure: Exception, out_of_memory: bool) -> str:
    first_line = (str(failure).strip().splitlines() or [""])[0]
    if out_of_memory:
        return (
            f"out of memory: {first_line} (try a smaller --resolution, fewer frames, or a GPU with more "
            "memory)"
        )
    return f"unexpected {type(failure).__name__}: {first_line}"
