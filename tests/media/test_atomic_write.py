from __future__ import annotations

import os

import pytest

from skyaudio_cli.media.atomic import atomic_write_path


def test_success_renames_over_the_destination(tmp_path):
    dest = tmp_path / "result.json"
    dest.write_text("old")
    with atomic_write_path(dest) as partial:
        assert partial.parent == tmp_path and partial.suffix == ".json" and partial.name.startswith(".")
        partial.write_text("new")
        assert dest.read_text() == "old"  # readers see the old result until the end
    assert dest.read_text() == "new"
    assert os.listdir(tmp_path) == ["result.json"]


@pytest.mark.parametrize("exception", [ValueError, KeyboardInterrupt])
def test_failure_removes_the_partial_and_keeps_the_old_file(tmp_path, exception):
    dest = tmp_path / "result.json"
    dest.write_text("old")
    with pytest.raises(exception), atomic_write_path(dest) as partial:
        partial.write_text("half")
        raise exception()
    assert dest.read_text() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_block_that_wrote_nothing_does_not_pretend_success(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_write_path(tmp_path / "result.json"):
        pass
    assert os.listdir(tmp_path) == []


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_later_write_removes_only_the_stale_partials_it_owns(tmp_path):
    """A writer killed outright (SIGKILL) leaves its partial; the next write of the same output
    removes it, but never a live writer's, another host's, or another output's."""
    from skyaudio_cli.media.atomic import _HOST

    dead, alive = _dead_pid(), os.getppid()
    token = "0123abcd"
    names = {
        "stale": f".talk.partial-{_HOST}-{dead}-{token}.mp4",
        "live writer": f".talk.partial-{_HOST}-{alive}-{token}.mp4",
        "other host": f".talk.partial-elsewhere-{dead}-{token}.mp4",
        "other output": f".talk2.partial-{_HOST}-{dead}-{token}.mp4",
        "other suffix": f".talk.partial-{_HOST}-{dead}-{token}.mov",
        "user file": ".talk.partial-notes.mp4",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x" * 261)

    with atomic_write_path(tmp_path / "talk.mp4") as partial:
        assert partial.name.startswith(f".talk.partial-{_HOST}-{os.getpid()}-")
        partial.write_bytes(b"video")

    left = set(os.listdir(tmp_path))
    assert names["stale"] not in left
    assert left == {"talk.mp4", *(name for kind, name in names.items() if kind != "stale")}
