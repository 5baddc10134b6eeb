"""SIGTERM and SIGINT handled as exceptions, so every `with` block on the way out cleans up.

Python's default SIGTERM ends the process on the spot, leaving ffmpeg running and a temporary
video next to the output; schedulers (Slurm, Kubernetes, `timeout`) send SIGTERM to stop a job.
SIGINT gets its own exception too, not KeyboardInterrupt: Typer turns a KeyboardInterrupt into a
silent exit 130 before the CLI could report it.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from skyaudio_cli.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Stopped(BaseException):  # noqa: N818 - named like KeyboardInterrupt, its sibling
    """A stop signal arrived. A BaseException, so per-job `except Exception` isolation does not
    swallow it."""

    exit_code: int
    reason: str


class Terminated(Stopped):
    exit_code = EXIT_TERMINATED
    reason = "terminated (SIGTERM)"


class Interrupted(Stopped):
    exit_code = EXIT_INTERRUPTED
    reason = "interrupted (SIGINT)"


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated and SIGINT raises Interrupted.

    An ignored SIGINT stays ignored: shells start background jobs (and `nohup` its command) that
    way on purpose.
    """

    def stop(signum, frame) -> None:
        # A second signal must not interrupt the cleanup the first one started.
        for name in stopping:
            signal.signal(name, signal.SIG_IGN)
        raise Terminated if signum == signal.SIGTERM else Interrupted

    stopping = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        stopping.append(signal.SIGINT)
    previous = {name: signal.signal(name, stop) for name in stopping}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def exit_code_for(stop: BaseException) -> int:
    """130 or 143 for a Stopped or a KeyboardInterrupt (raised by code, or outside the block)."""
    return stop.exit_code if isinstance(stop, Stopped) else EXIT_INTERRUPTED
