"""SIGTERM handled like Ctrl-C: as an exception, so every `with` block on the way out cleans up.

Python's default SIGTERM ends the process on the spot, leaving ffmpeg running and a temporary
video next to the output; schedulers (Slurm, Kubernetes) send SIGTERM to preempt a job.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from skyaudio_cli.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(BaseException):  # noqa: N818 - named like KeyboardInterrupt, its sibling
    """SIGTERM arrived. A BaseException, so per-job `except Exception` isolation does not swallow it."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    def terminate(signum, frame) -> None:
        # A second SIGTERM must not interrupt the cleanup the first one started.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code_for(stop: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
