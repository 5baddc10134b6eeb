"""Video out: stream RGB frames into an H.264/AAC .mp4, written atomically.

Frames are piped to ffmpeg as they are produced, so memory does not grow with the video's length.
The file appears under its final name only after ffmpeg finished successfully; an exception,
Ctrl+C or an ffmpeg failure (disk full, ...) kills ffmpeg and leaves the folder as it was.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from fractions import Fraction
from pathlib import Path

import numpy as np

from skyaudio_cli.errors import RuntimeFailure
from skyaudio_cli.media.atomic import atomic_write_path, discard, partial_path_for
from skyaudio_cli.media.ffmpeg import (
    failure_reason,
    ffmpeg_command,
    ffmpeg_file_url,
    read_log_file,
    run_ffmpeg,
)
from skyaudio_cli.media.paths import check_output_path
from skyaudio_cli.media.soundtrack import Soundtrack

# Converted and tagged as BT.709 (HD), limited range, so players do not guess: untagged streams
# are read as BT.601 by some players and BT.709 by others, shifting skin tones.
_TO_BT709_YUV420 = (
    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
    "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
)
# Sample rate of the soundtrack: 48 kHz is what editors and players expect in .mp4, and its shorter
# AAC frames (21 ms) let the audio end closer to the last video frame.
OUTPUT_AUDIO_SAMPLE_RATE = 48000


def encoded_size(width: int, height: int) -> tuple[int, int]:
    """The size of an .mp4 written from `width` x `height` frames.

    yuv420p (what every player decodes) stores colour per 2x2 block, and H.264 signals a display
    crop in the same 2-pixel units, so an odd width or height cannot be represented: the last
    column/row is dropped (641x479 -> 640x478); every remaining pixel is the frame's own.
    """
    return width - width % 2, height - height % 2


class VideoWriter:
    """Context manager writing an H.264 (yuv420p) .mp4 with an optional mono AAC soundtrack
    (a wave, or a `Soundtrack` of files that ffmpeg assembles without loading them).

        with VideoWriter(out, fps=25, width=832, height=480, audio=wave) as writer:
            for frames in chunks:
                writer.write(frames)  # HxWx3 or NxHxWx3 uint8 RGB

    The output lasts exactly as long as the frames written: the audio is padded with silence or
    cut to that length (the AAC track may end up to one 21 ms AAC frame later). The pipeline makes
    ceil(duration * fps) frames, so the video is never shorter than its speech. Odd width/height
    lose their last pixel column/row (`encoded_size`). `-movflags +faststart`
    puts the index first, so the file can play while it downloads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float,
        width: int,
        height: int,
        audio: np.ndarray | Soundtrack | None = None,
        audio_sample_rate: int = 16000,
        overwrite: bool = False,
        crf: int = 18,
    ) -> None:
        if fps <= 0 or width <= 0 or height <= 0:
            raise ValueError(f"fps and size must be positive, got fps={fps} size={width}x{height}")
        if isinstance(audio, np.ndarray) and audio.ndim != 1:
            raise ValueError(f"audio must be a 1-D mono wave, got shape {audio.shape}")
        self.path = check_output_path(path, overwrite=overwrite)
        self.fps = fps
        self.width = width
        self.height = height
        self.frames_written = 0
        self._audio = audio
        self._audio_sample_rate = audio_sample_rate
        self._crf = crf
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._session: AbstractContextManager[None] | None = None

    def __enter__(self) -> VideoWriter:
        self._session = self._encoding_session()
        self._session.__enter__()
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool | None:
        session, self._session = self._session, None
        return session.__exit__(exc_type, exc, traceback)

    def write(self, frames: np.ndarray) -> None:
        """Append one HxWx3 frame or a batch NxHxWx3 of uint8 RGB frames."""
        if self._process is None:
            raise RuntimeError("VideoWriter.write() called outside its with-block")
        batch = frames[np.newaxis] if frames.ndim == 3 else frames
        if batch.ndim != 4 or batch.shape[1:] != (self.height, self.width, 3) or batch.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 frames of shape ({self.height}, {self.width}, 3), "
                f"got {frames.dtype} {frames.shape}"
            )
        try:
            self._process.stdin.write(np.ascontiguousarray(batch).data)
        except BrokenPipeError:
            self._process.wait()
            raise self._failure() from None
        self.frames_written += batch.shape[0]

    @contextmanager
    def _encoding_session(self) -> Iterator[None]:
        with atomic_write_path(self.path) as final, ExitStack() as stack:
            # With audio, the video is encoded first and the soundtrack muxed in a second, copying
            # pass: only then is the video's length known, so the audio can be fitted to it exactly
            # (ffmpeg's apad + -shortest overshoots by encoder lookahead on short clips).
            video_only = final
            if self._audio is not None:
                video_only = partial_path_for(self.path)
                stack.callback(discard, video_only)
            self._log_file = stack.enter_context(tempfile.TemporaryFile())
            self._process = subprocess.Popen(
                ffmpeg_command(self._video_arguments(video_only, faststart=self._audio is None)),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log_file,
            )
            try:
                yield
                self._finish()
            finally:
                if self._process.poll() is None:
                    self._process.kill()
                self._process.wait()
                self._process = None
            if self._audio is not None:
                self._mux_audio(video_only, final)

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise RuntimeFailure(f"no frames were written to {self.path}")
        # A broken pipe here means ffmpeg already exited; its exit status and log say why.
        with suppress(BrokenPipeError):
            self._process.stdin.close()
        if self._process.wait() != 0:
            raise self._failure()

    def _failure(self) -> RuntimeFailure:
        reason = failure_reason(read_log_file(self._log_file), self._process.returncode)
        return RuntimeFailure(f"writing video {self.path} failed: {reason}")

    def _video_arguments(self, output: Path, *, faststart: bool) -> list[str]:
        rate = str(Fraction(self.fps).limit_denominator(1001))
        args = ["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{self.width}x{self.height}"]
        args += ["-framerate", rate, "-i", "pipe:0"]
        filters = []
        if encoded_size(self.width, self.height) != (self.width, self.height):
            filters.append("crop={}:{}:0:0".format(*encoded_size(self.width, self.height)))
        filters.append(_TO_BT709_YUV420)
        args += ["-vf", ",".join(filters), "-c:v", "libx264", "-crf", str(self._crf), "-pix_fmt", "yuv420p"]
        if faststart:
            args += ["-movflags", "+faststart"]
        return [*args, "-f", "mp4", ffmpeg_file_url(output)]

    def _mux_audio(self, video_only: Path, final: Path) -> None:
        if isinstance(self._audio, Soundtrack):
            # Assembled and fitted by ffmpeg straight from the files: no wave in memory.
            samples = round(self.frames_written / self.fps * OUTPUT_AUDIO_SAMPLE_RATE)
            inputs, graph = self._audio.ffmpeg_arguments(1, OUTPUT_AUDIO_SAMPLE_RATE, samples)
            args = ["-y", "-i", ffmpeg_file_url(video_only), *inputs, "-filter_complex", graph]
            args += ["-map", "0:v:0", "-map", "[track]", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k"]
            args += ["-movflags", "+faststart", "-f", "mp4", ffmpeg_file_url(final)]
            run_ffmpeg(args, what=f"writing video {self.path} failed")
            return
        samples = round(self.frames_written / self.fps * self._audio_sample_rate)
        fitted = np.zeros(samples, np.float32)
        kept = min(samples, len(self._audio))
        fitted[:kept] = self._audio[:kept]
        # An unnamed temporary file read as ffmpeg's stdin: nothing in the temp folder has a name
        # that a killed process could leave behind.
        with tempfile.TemporaryFile(prefix="skyaudio-audio-") as raw:
            raw.write(np.ascontiguousarray(fitted, dtype="<f4").tobytes())
            raw.seek(0)
            args = ["-y", "-i", ffmpeg_file_url(video_only)]
            args += ["-f", "f32le", "-ar", str(self._audio_sample_rate), "-ac", "1", "-i", "pipe:0"]
            args += ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy"]
            args += ["-ar", str(OUTPUT_AUDIO_SAMPLE_RATE), "-c:a", "aac", "-b:a", "128k"]
            args += ["-movflags", "+faststart", "-f", "mp4", ffmpeg_file_url(final)]
            run_ffmpeg(args, what=f"writing video {self.path} failed", stdin=raw)
