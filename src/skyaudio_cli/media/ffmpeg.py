"""Running the bundled ffmpeg binary and reading what it says.

There is no ffprobe next to imageio-ffmpeg's binary, so everything we know about a file comes from
ffmpeg's own log: the stream listing it prints for the first input, and the messages it logs at
error level. ffmpeg is always run with `-loglevel level+info`, which tags every line with its level,
so errors can be told apart from the stream listing in one run.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from skyaudio_cli.errors import RuntimeFailure, SkyaudioError

ERROR_LEVELS = frozenset({"error", "fatal", "panic"})

# One log line: optional "[context @ 0x...]" prefixes (several when a decoder is nested in a
# stream), then the level tag that `level+` adds, then the message.
_LOG_LINE = re.compile(
    r"^(?:\[[^\]]*\] )*?\[(?P<level>quiet|panic|fatal|error|warning|info|verbose|debug|trace)\] (?P<text>.*)$"
)
_STREAM_LINE = re.compile(
    r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<spec>.*)$"
)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
# ffmpeg's summary lines repeat a more specific message logged just before them.
_GENERIC_FAILURE = re.compile(
    r"^(Error opening (input|output) files?\b|Conversion failed|To ignore this|Failed to set value|"
    r"Error parsing options|Exiting normally|At least one output file must be specified)"
)


# What the system said when a write failed: the cause, which outranks ffmpeg's consequences logged
# after it ("Nothing was written into output file ...").
_SYSTEM_ERRORS = tuple(
    os.strerror(code)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG, errno.EIO)
)


@dataclass(frozen=True)
class LogLine:
    level: str
    text: str


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the first input as ffmpeg lists it, with the indented lines under it."""

    kind: str
    spec: str
    details: tuple[str, ...]


@dataclass(frozen=True)
class FfmpegResult:
    returncode: int
    stdout: bytes
    log: tuple[LogLine, ...]

    @property
    def damage(self) -> list[str]:
        """Signs of a damaged input in a run that may still have succeeded: errors, corrupt packets.

        ffmpeg decodes around damage and exits 0; a truncated WAV only shows a "corrupt packet"
        warning. Our inputs are short clips, so refusing them beats animating half a sentence.
        """
        return [
            line.text
            for line in self.log
            if line.level in ERROR_LEVELS or (line.level == "warning" and "corrupt" in line.text.lower())
        ]

    @property
    def opened_input(self) -> bool:
        """Whether ffmpeg recognised input #0 as a media file (it listed the input, maybe empty)."""
        return any(line.level == "info" and line.text.startswith("Input #0,") for line in self.log)

    @property
    def declared_duration(self) -> float | None:
        """Duration of input #0 as its container states it (the longest stream), if it states one."""
        for line in self.log:
            match = _DURATION.match(line.text)
            if match and line.level == "info":
                hours, minutes, seconds = match.groups()
                return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return None

    @property
    def streams(self) -> list[StreamInfo]:
        return input_streams(self.log)

    def failure_reason(self) -> str:
        return failure_reason(self.log, self.returncode)


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg (or named by IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise RuntimeFailure(f"ffmpeg not found: {error}; reinstall imageio-ffmpeg") from error


def ffmpeg_command(args: Sequence[str]) -> list[str]:
    """Full command line: our fixed flags first, so no call can forget them."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", *args]


def ffmpeg_file_url(path: Path) -> str:
    """Absolute `file:` URL, so names with ':' or a leading '-' are never read as protocols or options."""
    return f"file:{Path(path).absolute()}"


def parse_log(text: str) -> tuple[LogLine, ...]:
    lines = []
    for raw in text.splitlines():
        match = _LOG_LINE.match(raw.rstrip())
        if match:
            lines.append(LogLine(match["level"], match["text"]))
    return tuple(lines)


def read_log_file(log_file: IO[bytes]) -> tuple[LogLine, ...]:
    """Parse the log of a streaming ffmpeg run, whose stderr went to a temporary file.

    Streaming runs log to a file, not a pipe: nobody reads a pipe while frames flow, and ffmpeg
    would block once its buffer filled.
    """
    log_file.seek(0)
    return parse_log(log_file.read().decode("utf-8", errors="replace"))


def input_streams(log: Sequence[LogLine]) -> list[StreamInfo]:
    """Streams of input #0 with their indented detail lines (metadata, display matrix, ...)."""
    streams: list[StreamInfo] = []
    in_first_input = False
    for line in log:
        if line.level != "info":
            continue
        if line.text.startswith(("Input #", "Output #", "Stream mapping:")):
            in_first_input = line.text.startswith("Input #0,")
            continue
        if not in_first_input:
            continue
        match = _STREAM_LINE.match(line.text)
        if match:
            streams.append(StreamInfo(match["kind"], match["spec"], ()))
        elif streams and line.text.startswith("    "):
            last = streams[-1]
            streams[-1] = StreamInfo(last.kind, last.spec, (*last.details, line.text.strip()))
    return streams


def failure_reason(log: Sequence[LogLine], returncode: int | None = None) -> str:
    """The one error line that best says why ffmpeg failed, without its context prefixes."""
    errors = [line.text for line in log if line.level in ERROR_LEVELS]
    specific = [text for text in errors if not _GENERIC_FAILURE.match(text)]
    # ffmpeg words the same cause differently at each stage ("Could not write header (incorrect
    # codec parameters ?): No space left on device"); the system's words alone say it best.
    for text in errors:
        cause = next((cause for cause in _SYSTEM_ERRORS if cause in text), None)
        if cause is not None:
            return cause
    if specific:
        return specific[-1].rstrip(".")
    if errors:
        return errors[-1].rstrip(".")
    if returncode is not None and returncode < 0:
        # Killed before it could log: out of memory (SIGKILL), file size limit (SIGXFSZ), ...
        return f"ffmpeg was killed by {signal.Signals(-returncode).name}"
    return "ffmpeg failed without an error message"


def execute_ffmpeg(
    args: Sequence[str], *, stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None
) -> FfmpegResult:
    """Run ffmpeg to completion and parse its log; never raises for ffmpeg's own failures.

    Its output comes back in `result.stdout` unless `stdout` (an open file) takes it: hours of
    decoded audio then go to disk instead of being collected in memory. `stdin` (an open file) is
    what `-i pipe:0` reads.
    """
    completed = subprocess.run(
        ffmpeg_command(args),
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        check=False,
    )
    log = parse_log(completed.stderr.decode("utf-8", errors="replace"))
    return FfmpegResult(completed.returncode, completed.stdout or b"", log)


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    error: type[SkyaudioError] = RuntimeFailure,
    stdin: IO[bytes] | None = None,
) -> FfmpegResult:
    """Run ffmpeg; on failure raise `error` as "<what>: <ffmpeg's reason>".

    The caller picks the class: a user's undecodable file is an InputError, a failed encode of our
    own output a RuntimeFailure.
    """
    result = execute_ffmpeg(args, stdin=stdin)
    if result.returncode != 0:
        raise error(f"{what}: {result.failure_reason()}")
    return result
