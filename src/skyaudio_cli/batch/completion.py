"""Is an existing output a finished result? What `--resume` asks before skipping a job.

Outputs are written atomically, so an interrupted job leaves no file at all; a file that is there
but unreadable, silent or of the wrong length was put there by something else and is not ours to
call done.
"""

from pathlib import Path

from skyaudio_cli.errors import InputError


def incomplete_reason(output: Path, expected_seconds: float | None) -> str | None:
    """None when `output` decodes fully, has a soundtrack and lasts `expected_seconds` to one frame."""
    from skyaudio_cli.media.video import probe_video

    try:
        info = probe_video(output)
    except InputError as unreadable:
        return str(unreadable)
    if not info.has_audio:
        return "it has no audio stream"
    if expected_seconds is not None and abs(info.duration - expected_seconds) > 1 / info.fps:
        return f"it lasts {info.duration:.2f} s, the job makes {expected_seconds:.2f} s"
    return None
