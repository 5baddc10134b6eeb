"""Checks on user-given file paths, done before any heavy work so a typo fails in milliseconds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from skyaudio_cli.errors import InputError


def require_input_file(path: str | os.PathLike[str], kind: str) -> Path:
    """Return `path` as a Path if it is an existing, readable regular file; `kind` names it in errors."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{kind} file not found: {path}")
    if path.is_dir():
        raise InputError(f"{kind} path is a directory, not a file: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{kind} file is not readable (permission denied): {path}")
    return path


def check_output_path(
    path: str | os.PathLike[str], *, overwrite: bool, suffixes: Sequence[str] = (".mp4",)
) -> Path:
    """Validate where an output will be written and return it as a Path.

    Rejects a suffix outside `suffixes`, a directory, a parent folder that is not writable (or, when
    it is missing, cannot be created), and an existing file unless `overwrite`. Nothing is created
    here: `atomic_write_path` creates missing folders when the output is written (the temporary
    file lives next to the destination).
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"output must be a {' or '.join(suffixes)} file: {path}")
    if path.is_dir():
        raise InputError(f"output path is a directory: {path}")
    folder = path.parent
    # A missing folder is created when the output is written, inside the nearest one that exists.
    base = folder if folder.exists() else next(parent for parent in folder.parents if parent.exists())
    problem = None
    if not base.is_dir():
        problem = "is not a directory"
    elif not os.access(base, os.W_OK | os.X_OK):
        problem = "is not writable"
    if problem is not None and base == folder:
        raise InputError(f"output folder {problem}: {folder}")
    if problem is not None:
        raise InputError(f"cannot create output folder {folder}: {base} {problem}")
    if path.exists() and not overwrite:
        raise InputError(f"output file already exists (pass --overwrite to replace it): {path}")
    return path
