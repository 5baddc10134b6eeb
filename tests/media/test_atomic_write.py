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
