"""`--devices 0,1,2,3`: one worker process per device, all pulling jobs from one shared queue.

Workers are spawned (not forked: CUDA cannot be shared across a fork) and each sees only its own
GPU, so every worker loads each model once onto its device. The parent hands out jobs, collects
results and reports a job whose worker died (killed by the kernel's OOM killer, a driver crash)
as failed, while the other workers carry on.
"""

import multiprocessing
import os
import queue
import sys
from collections.abc import Callable, Iterator

from skyaudio_cli.batch.manifest import BatchJob
from skyaudio_cli.batch.results import FAILED, JobResult
from skyaudio_cli.batch.runner import announce, run_one
from skyaudio_cli.batch.signals import Stopped, exit_code_for, stop_signals_raise
from skyaudio_cli.errors import EXIT_RUNTIME, InputError

STARTED, FINISHED = "started", "finished"
POLL_SECONDS = 1.0  # how often the parent looks for dead workers while it waits for results
STOP_GRACE_SECONDS = 30.0  # how long a stopped worker gets to abandon its job cleanly


def parse_devices(text: str) -> list[str]:
    """`0,1,2,3` (CUDA device indices) or `cpu,cpu` (CPU workers, for testing)."""
    devices = [name.strip() for name in text.split(",")]
    if all(name.isdigit() for name in devices) or all(name == "cpu" for name in devices):
        return devices
    raise InputError(f"--devices {text}: list GPU indices (0,1,2,3) or cpu entries (cpu,cpu), not a mix")


def job_device(devices: list[str]) -> str:
    """The device every job runs on inside its worker (which sees only its own GPU)."""
    return "cpu" if devices[0] == "cpu" else "cuda"


def run_on_devices(
    jobs: list[BatchJob], devices: list[str], on_result: Callable[[JobResult], None], *, fail_fast: bool
) -> None:
    context = multiprocessing.get_context("spawn")
    todo, done = context.Queue(), context.Queue()
    # Jobs left in the queue when the batch stops early must not keep the parent from exiting.
    todo.cancel_join_thread()
    for job in jobs:
        todo.put(job)
    for _ in devices:
        todo.put(None)  # one "no more jobs" per worker
    # CPU workers share the cores; each using all of them would oversubscribe the machine.
    cpu_threads = max(1, (os.cpu_count() or 1) // len(devices))
    workers = [
        context.Process(
            target=_work, args=(number, device, cpu_threads, todo, done), name=f"skyaudio-worker-{device}"
        )
        for number, device in enumerate(devices)
    ]
    for worker in workers:
        worker.start()
    finished = False
    try:
        _collect(jobs, workers, devices, done, on_result, fail_fast)
        finished = True
    finally:
        _stop(workers, abandon=not finished)


def _collect(jobs, workers, devices, done, on_result, fail_fast) -> None:
    tracker = _Tracker(jobs, devices, on_result, fail_fast)
    while tracker.waiting:
        try:
            if tracker.take(done.get(timeout=POLL_SECONDS)):
                return
            continue
        except queue.Empty:
            pass
        dead = [number for number, worker in enumerate(workers) if not worker.is_alive()]
        # A worker that died has flushed its last messages: read them before blaming it.
        for message in _drain(done):
            if tracker.take(message):
                return
        for number in dead:
            tracker.worker_died(number, workers[number].exitcode)
        if len(dead) == len(workers):
            tracker.no_workers_left()


class _Tracker:
    """Which job each worker runs and which results are still owed, from the workers' messages."""

    def __init__(self, jobs, devices, on_result, fail_fast) -> None:
        self.waiting = {job.index: job for job in jobs}
        self._total = len(jobs)
        self._devices = devices
        self._on_result = on_result
        self._fail_fast = fail_fast
        self._running: dict[int, int] = {}  # worker number -> index of its current job
        self._started = 0

    def take(self, message) -> bool:
        """Record one worker message; True when the batch must stop (fail-fast)."""
        kind, number, payload = message
        if kind == STARTED:
            self._running[number] = payload
            self._started += 1
            announce(self._started, self._total, self.waiting[payload], self._devices[number])
            return False
        self._running.pop(number, None)
        self._finish(payload)
        return self._fail_fast and payload.status == FAILED

    def worker_died(self, number: int, exit_code: int | None) -> None:
        if number in self._running:
            job = self.waiting[self._running.pop(number)]
            device = self._devices[number]
            self._finish(_failed(job, f"worker process for device {device} died (exit code {exit_code})"))

    def no_workers_left(self) -> None:
        for job in list(self.waiting.values()):
            self._finish(_failed(job, "not run: every worker process has exited"))

    def _finish(self, result: JobResult) -> None:
        del self.waiting[result.index]
        self._on_result(result)


def _drain(done) -> Iterator:
    while True:
        try:
            yield done.get_nowait()
        except queue.Empty:
            return


def _failed(job: BatchJob, reason: str) -> JobResult:
    return JobResult(job.line, job.index, job.task, FAILED, str(job.job.output), EXIT_RUNTIME, error=reason)


def _stop(workers, abandon: bool) -> None:
    if abandon:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the worker abandons its job and removes partial files
    for worker in workers:
        worker.join(STOP_GRACE_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join()


def _work(number: int, device: str, cpu_threads: int, todo, done) -> None:
    if device != "cpu":
        # Before torch initialises CUDA: this worker's GPU becomes its only one, "cuda".
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    import torch

    from skyaudio_cli.pipeline.cache import PipelineCache
    from skyaudio_cli.pipeline.library_logs import silence_libraries

    if device == "cpu":
        torch.set_num_threads(cpu_threads)

    silence_libraries()
    pipelines = PipelineCache()
    try:
        with stop_signals_raise():
            while (job := todo.get()) is not None:
                done.put((STARTED, number, job.index))
                done.put((FINISHED, number, run_one(job, pipelines)))
    except (KeyboardInterrupt, Stopped) as stop:
        sys.exit(exit_code_for(stop))
