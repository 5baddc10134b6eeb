"""A batch stopped in the middle of a job (SIGTERM to its process group, or SIGKILL, which nothing
can clean up after), then rerun with --resume: every job is done exactly once, and no temporary
file is left, not even the killed writer's."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import skyaudio_cli
from skyaudio_cli.errors import EXIT_TERMINATED

pytestmark = pytest.mark.slow


def _restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopped_mid_job_then_resume_does_every_job_once(
    tmp_path, clips, job_line, write_manifest, batch_cli, assert_complete, partial_files, stop
):
    out = tmp_path / "out"
    out.mkdir()
    jobs = 3
    audio = {n: clips[n % len(clips)] for n in range(jobs)}
    manifest = write_manifest(
        tmp_path / "jobs.jsonl", [job_line(audio[n], out / f"{n}.mp4", seed=n, steps=6) for n in range(jobs)]
    )
    first_results = tmp_path / "first.jsonl"
    env = {**os.environ, "PYTHONPATH": str(os.path.dirname(os.path.dirname(skyaudio_cli.__file__)))}
    batch = subprocess.Popen(
        [sys.executable, "-m", "skyaudio_cli", "batch", str(manifest), "--results", str(first_results)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True, preexec_fn=_restore_sigint,
    )  # fmt: skip
    # Stop it while a job after the first is being written: a result exists and a partial file too.
    deadline = time.monotonic() + 180
    while not (first_results.exists() and first_results.read_text() and partial_files(out)):
        assert batch.poll() is None, batch.communicate()[1]
        assert time.monotonic() < deadline, "no second job in progress within 3 minutes"
        time.sleep(0.01)
    os.killpg(batch.pid, stop)  # the batch and its ffmpeg children, as a scheduler does
    _, stderr = batch.communicate(timeout=120)

    if stop == signal.SIGTERM:
        assert batch.returncode == EXIT_TERMINATED, stderr
        assert partial_files(out) == []
    else:
        assert batch.returncode == -signal.SIGKILL
        assert len(partial_files(out)) >= 1  # nothing could clean up
    finished = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}
    assert 1 <= len(finished) < jobs
    first = [json.loads(line) for line in first_results.read_text().splitlines()]
    assert all(r["status"] == "ok" and f"{r['index']}.mp4" in finished for r in first)

    code, resumed, _ = batch_cli(manifest, "--resume")

    assert code == 0
    assert {r["index"]: r["status"] for r in resumed} == {
        n: "skipped" if f"{n}.mp4" in finished else "ok" for n in range(jobs)
    }
    assert partial_files(out) == []  # the killed writer's temporary file too
    for n in range(jobs):
        assert_complete(out / f"{n}.mp4", audio[n])
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == finished  # not redone
