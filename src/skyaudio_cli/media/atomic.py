"""Write a file so that readers only ever see nothing or the complete result.

Batch jobs check for the output file to decide what is done; a half-written video left by a crash,
Ctrl+C or a full disk would look finished. The work goes to a hidden temporary name in the
destination folder (same filesystem, so the final rename is atomic) and is renamed over the
destination only when the block finishes without an exception.

A process killed outright (SIGKILL, power loss) cannot clean up, so temporary names carry the
host and the PID of their writer: the next write of the same destination removes the temporary
files whose writer is gone, and only those (a live writer's, or another host's on a shared
filesystem, are left alone).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from skyaudio_cli.errors import InputError

# '-' separates the name's fields, so it is replaced in the host name.
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:32] or "localhost"


def partial_path_for(dest: Path) -> Path:
    """Hidden sibling of `dest` with the same suffix (tools such as ffmpeg pick the format from it),
    named after this host and process."""
    return dest.with_name(f".{dest.stem}.partial-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{dest.suffix}")


def remove_stale_partials(dest: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files of `dest` left by dead processes of this host; returns them."""
    dest = Path(dest)
    pattern = re.compile(
        rf"\.{re.escape(dest.stem)}\.partial-(?P<host>[^-]+)-(?P<pid>\d+)-[0-9a-f]{{8}}{re.escape(dest.suffix)}"
    )
    removed = []
    try:
        names = os.listdir(dest.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match and match["host"] == _HOST and not _is_alive(int(match["pid"])):
            stale = dest.parent / name
            try:
                stale.unlink()
            except FileNotFoundError:
                continue  # another run removed it first
            removed.append(stale)
    return removed


def discard(path: Path) -> None:
    """Remove a temporary file, if it can be: in a folder that became read-only (or vanished) it
    stays, and the error that stopped the write is the one reported; the next write of the same
    output removes it."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


def _is_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


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
    remove_stale_partials(dest)
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
        discard(partial)
        raise
