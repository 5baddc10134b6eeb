"""One JSON line per job, written in manifest order as soon as each is known, and the batch's exit code."""

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from skyaudio_cli.errors import EXIT_BATCH_NONE_SUCCEEDED, EXIT_BATCH_SOME_FAILED, EXIT_OK

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass
class JobResult:
    line: int
    index: int
    task: str | None
    status: str  # OK, FAILED or SKIPPED
    output: str | None
    # What the job's own subcommand would have exited with: 0, or the failure's class (2 bad input,
    # 3 weights, 4 runtime, 5 not available).
    exit_code: int = EXIT_OK
    error: str | None = None
    seconds: float = 0.0
    load_seconds: float = 0.0  # model loading this job waited for (0 when a loaded model was reused)
    details: dict[str, Any] = field(default_factory=dict)  # the task's own result: frames, fps, ...

    def to_json(self) -> str:
        record = {
            **self.details,
            "line": self.line,
            "index": self.index,
            "task": self.task,
            "status": self.status,
            "output": self.output,
            "exit_code": self.exit_code,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
        }
        return json.dumps(record, sort_keys=True)


class ResultStream:
    """Writes results in the order of `indices` although workers may finish them out of order.

    Each line is flushed as soon as every earlier job's result is known, so a killed batch leaves
    the results so far behind; `close` writes the rest that is known.
    """

    def __init__(self, sink: TextIO, indices: list[int]) -> None:
        self._sink = sink
        self._pending = list(indices)
        self._known: dict[int, JobResult] = {}
        self.results: list[JobResult] = []

    def add(self, result: JobResult) -> None:
        self._known[result.index] = result
        while self._pending and self._pending[0] in self._known:
            self._write(self._known.pop(self._pending.pop(0)))

    def close(self) -> None:
        for index in self._pending:
            if index in self._known:
                self._write(self._known.pop(index))
        self._pending = []

    def _write(self, result: JobResult) -> None:
        self.results.append(result)
        self._sink.write(result.to_json() + "\n")
        self._sink.flush()


def batch_exit_code(results: list[JobResult]) -> int:
    """0 when nothing failed (skipped-as-complete counts as success), else whether anything succeeded."""
    if not any(result.status == FAILED for result in results):
        return EXIT_OK
    if any(result.status != FAILED for result in results):
        return EXIT_BATCH_SOME_FAILED
    return EXIT_BATCH_NONE_SUCCEEDED
