"""Write a file so that readers only ever see nothing or the complete result.

Batch jobs check for the output file to decide what is done; a half-written video left by a crash,
Ctrl+C or a full disk would look finished. The work goes to a hidden temporary name in the
destination folder (same filesystem, so the final rename is atomic) and is renamed over the
destination only when the block finishes without an exception.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from skyaudio_cli.errors import InputError


def partial_path_for(dest: Path) -> Path:
    """Hidden sibling of `dest` with the same suffix (tools such as ffmpeg pick the format from it)."""
    return dest.with_name(f".{dest.stem}.partial-{secrets.token_hex(4)}{dest.suffix}")


@contextmanager
def atomic_write_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `dest`; rename it to `dest` on success, delete it on failure.

    Missing parent folders of `dest` are created first (and stay, even if the block fails).

    The temporary file is not created here: the caller (or the tool it runs) creates it. If the
    block succeeds without creating it, FileNotFoundError is raised rather than pretending to have
    written `dest`. Any exception, KeyboardInterrupt included, removes the temporary file and
    propagates unchanged. An existing `dest` is replaced: checking whether that is allowed is the
    caller's job, before the work starts.
    """
    dest = Path(dest)
    partial = partial_path_for(dest)
    try:
        # Missing folders are created, as generation tools do (`-o out/new/talk.mp4` just works).
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create output folder {dest.parent}: {error.strerror or error}") from None
    try:
        yield partial
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
