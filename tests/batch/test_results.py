"""Result lines in manifest order, the batch exit code, and the parent's view of worker processes."""

import io
import json

import pytest

from skyaudio_cli.batch.manifest import BatchJob
from skyaudio_cli.batch.results import FAILED, OK, SKIPPED, JobResult, ResultStream, batch_exit_code
from skyaudio_cli.batch.runner import is_out_of_memory
from skyaudio_cli.batch.workers import FINISHED, STARTED, _Tracker, parse_devices
from skyaudio_cli.errors import EXIT_BATCH_NONE_SUCCEEDED, EXIT_BATCH_SOME_FAILED, EXIT_RUNTIME, InputError
from skyaudio_cli.tasks.jobs import GenerateJob


def result(index: int, status: str = OK) -> JobResult:
    return JobResult(line=index + 1, index=index, task="generate", status=status, output=f"o{index}.mp4")


def written(sink: io.StringIO) -> list[int]:
    return [json.loads(line)["index"] for line in sink.getvalue().splitlines()]


def test_results_are_written_in_manifest_order_as_soon_as_known():
    sink = io.StringIO()
    stream = ResultStream(sink, [0, 2, 5, 7])
    stream.add(result(2))
    assert written(sink) == []  # job 0 is still running
    stream.add(result(0))
    assert written(sink) == [0, 2]
    stream.add(result(7))
    assert written(sink) == [0, 2]
    stream.close()  # interrupted: job 5 never finished; what is known is kept
    assert written(sink) == [0, 2, 7]


def test_result_line_fields():
    line = json.loads(
        JobResult(
            3, 2, "generate", FAILED, "o.mp4", 2, error="bad", seconds=1.23456, details={"frames": 8}
        ).to_json()
    )
    assert line == {
        "line": 3, "index": 2, "task": "generate", "status": "failed", "output": "o.mp4", "exit_code": 2,
        "error": "bad", "seconds": 1.235, "load_seconds": 0.0, "frames": 8,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], 0),
        ([OK, SKIPPED], 0),
        ([SKIPPED], 0),
        ([OK, FAILED], EXIT_BATCH_SOME_FAILED),
        ([SKIPPED, FAILED], EXIT_BATCH_SOME_FAILED),
        ([FAILED, FAILED], EXIT_BATCH_NONE_SUCCEEDED),
    ],
)
def test_batch_exit_code(statuses, code):
    assert batch_exit_code([result(n, status) for n, status in enumerate(statuses)]) == code


def test_out_of_memory_is_recognised():
    import torch

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: out of memory")
    )
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_devices_option():
    assert parse_devices("0,1,2,3") == ["0", "1", "2", "3"]
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    for bad in ("0,cpu", "gpu0", "0,,1"):
        with pytest.raises(InputError, match="--devices"):
            parse_devices(bad)


def batch_job(index: int) -> BatchJob:
    return BatchJob(index + 1, index, "generate", GenerateJob(audio="a.wav", output=f"o{index}.mp4"))


def test_job_of_a_dead_worker_is_failed_and_the_rest_still_counted():
    reported = []
    tracker = _Tracker(
        [batch_job(0), batch_job(1), batch_job(2)], ["0", "1"], reported.append, fail_fast=False
    )
    tracker.take((STARTED, 0, 0))
    tracker.take((STARTED, 1, 1))
    tracker.take((FINISHED, 1, result(1)))
    tracker.worker_died(0, -9)  # killed while on job 0
    tracker.worker_died(1, 0)  # exited normally, owed nothing
    assert [(r.index, r.status) for r in reported] == [(1, OK), (0, FAILED)]
    assert reported[1].exit_code == EXIT_RUNTIME and "device 0 died (exit code -9)" in reported[1].error
    tracker.no_workers_left()
    assert reported[2].index == 2 and "every worker process has exited" in reported[2].error
    assert tracker.waiting == {}


def test_fail_fast_stops_at_the_first_failed_result():
    tracker = _Tracker([batch_job(0), batch_job(1)], ["0"], lambda r: None, fail_fast=True)
    tracker.take((STARTED, 0, 0))
    assert tracker.take((FINISHED, 0, result(0, FAILED))) is True
