"""User-facing errors and the exit codes the CLI maps them to.

Every error a user can cause (bad file, missing weights, ...) is raised as one of these with a
one-line message naming the file or option and the problem; the CLI prints the message and exits
with the class's code, never a traceback.
"""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_WEIGHTS = 3
EXIT_RUNTIME = 4
EXIT_NOT_AVAILABLE = 5
# `skyaudio batch` only: some jobs failed (others succeeded or were already complete) / none succeeded.
EXIT_BATCH_SOME_FAILED = 6
EXIT_BATCH_NONE_SUCCEEDED = 7
EXIT_INTERRUPTED = 130
# 128 + SIGTERM, what a shell reports for a terminated process; schedulers send SIGTERM on preemption.
EXIT_TERMINATED = 143


# What each code means, for `skyaudio --help` (README "Exit codes" says the same at length).
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_USAGE: "bad input or usage",
    EXIT_WEIGHTS: "weights missing or invalid",
    EXIT_RUNTIME: "runtime failure",
    EXIT_NOT_AVAILABLE: "not available in this version",
    EXIT_BATCH_SOME_FAILED: "batch: some jobs failed",
    EXIT_BATCH_NONE_SUCCEEDED: "batch: no job succeeded",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "terminated (SIGTERM)",
}


class SkyaudioError(Exception):
    """Base class: a failure to report as one line, with an exit code."""

    exit_code = EXIT_RUNTIME


class InputError(SkyaudioError):
    """Bad input from the user: missing/corrupt file, invalid or conflicting option."""

    exit_code = EXIT_USAGE


class WeightsError(SkyaudioError):
    """Model weights missing, incomplete or not matching the expected layout."""

    exit_code = EXIT_WEIGHTS


class RuntimeFailure(SkyaudioError):
    """The job itself failed (out of memory, ffmpeg failure, ...)."""

    exit_code = EXIT_RUNTIME


class NotAvailableError(SkyaudioError):
    """A capability that is declared but not implemented yet."""

    exit_code = EXIT_NOT_AVAILABLE
