"""Batch reliability on the tiny model: bad jobs isolated, one model load, out-of-memory survived,
interrupted runs leave no partial file and resume without redoing finished work, CPU workers."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from skyaudio_cli.errors import EXIT_BATCH_NONE_SUCCEEDED, EXIT_BATCH_SOME_FAILED, EXIT_RUNTIME, EXIT_USAGE

pytestmark = pytest.mark.slow


@pytest.fixture
def small_video(tmp_path, clips):
    """`small_video(name, frames)`: a 32x32 25 fps clip with sound and no face in it."""
    from skyaudio_cli.media.audio import load_audio
    from skyaudio_cli.media.video import VideoWriter

    def make(name: str, frames: np.ndarray):
        path = tmp_path / name
        with VideoWriter(path, fps=25, width=32, height=32, audio=load_audio(clips[0])) as writer:
            writer.write(frames)
        return path

    return make


def test_twenty_jobs_five_bad_ones_reported_the_rest_complete(
    tmp_path, clips, job_line, write_manifest, batch_cli, assert_complete, partial_files, small_video
):
    out = tmp_path / "out"
    out.mkdir()
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    faceless = small_video("faceless.mp4", np.full((4, 32, 32, 3), 128, np.uint8))
    source = small_video("source.mp4", np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), np.uint8))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")

    def video_task(task: str, video, audio, output, **fields) -> dict:
        line = job_line(audio, output, task=task, video=str(video), **fields)
        del line["portrait"]
        return line

    bad = {
        2: (job_line(tmp_path / "missing.wav", out / "bad2.mp4"), "missing.wav: file not found"),
        6: (job_line(corrupt, out / "bad6.mp4"), "corrupt.wav"),
        10: (video_task("edit-lipsync", faceless, clips[0], out / "bad10.mp4"), "no face found in any frame"),
        14: (job_line(clips[0], blocker / "bad14.mp4"), "output folder is not a directory"),
        18: (job_line(clips[0], out / "bad18.mp4", resolution="33x32"), "33x32"),
    }
    extended = {4, 12}  # good jobs continuing `source` rather than animating the portrait
    audio = {n: clips[n % len(clips)] for n in range(20) if n not in bad}
    lines = [
        bad[n][0] if n in bad
        else video_task("extend", source, audio[n], out / f"good{n}.mp4", seed=n) if n in extended
        else job_line(audio[n], out / f"good{n}.mp4", seed=n)
        for n in range(20)
    ]  # fmt: skip
    manifest = write_manifest(tmp_path / "jobs.jsonl", lines)

    code, results, stderr = batch_cli(manifest)

    assert code == EXIT_BATCH_SOME_FAILED
    assert [r["index"] for r in results] == list(range(20))
    for n, record in enumerate(results):
        if n in bad:
            assert record["status"] == "failed" and record["exit_code"] == EXIT_USAGE
            assert bad[n][1] in record["error"] and f"line {n + 1}: " in stderr
        else:
            assert record["status"] == "ok" and record["error"] is None, record
            assert_complete(out / f"good{n}.mp4", audio[n], before=5 / 25 if n in extended else 0.0)
    # One model load, paid by the first job to run; every later job, of either task, reused it.
    assert sum(r["load_seconds"] > 0 for r in results) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(f"good{n}.mp4" for n in audio)
    assert partial_files(out) == []


def test_out_of_memory_is_isolated_memory_freed_and_the_model_kept(
    tmp_path, monkeypatch, clips, job_line, write_manifest, batch_cli
):
    import torch

    from skyaudio_cli.pipeline import cache
    from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

    real_denoise = TalkingVideoPipeline.denoise
    calls = []

    def fault_injected(self, *args, **kwargs):  # a CUDA OOM on CPU, in the second job's sampling
        calls.append(1)
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_denoise(self, *args, **kwargs)

    releases = []
    real_release = cache.release_memory
    monkeypatch.setattr(TalkingVideoPipeline, "denoise", fault_injected)
    monkeypatch.setattr(cache, "release_memory", lambda: releases.append(1) or real_release())
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [job_line(clips[0], tmp_path / f"{n}.mp4") for n in range(3)],
    )

    code, results, stderr = batch_cli(manifest)

    assert code == EXIT_BATCH_SOME_FAILED
    assert [r["status"] for r in results] == ["ok", "failed", "ok"]
    assert results[1]["exit_code"] == EXIT_RUNTIME and results[1]["error"].startswith("out of memory: CUDA")
    assert releases == [1]
    assert results[2]["load_seconds"] == 0  # the loaded model survived the failure
    assert not (tmp_path / "1.mp4").exists()


def test_alternating_models_load_once_each_and_results_keep_manifest_order(
    tmp_path, clips, tiny_model, job_line, write_manifest, batch_cli
):
    other_model = tmp_path / "other-model"
    other_model.symlink_to(tiny_model)  # another model name: the cache keys pipelines on it
    models = [tiny_model, other_model, tiny_model]
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [job_line(clips[0], tmp_path / f"{n}.mp4", model=str(m)) for n, m in enumerate(models)],
    )
    code, results, stderr = batch_cli(manifest)
    assert code == 0
    assert [r["index"] for r in results] == [0, 1, 2]
    assert sum(r["load_seconds"] > 0 for r in results) == 2
    # Run grouped by model: lines 1 and 3 (first model), then line 2.
    assert stderr.index("line 3:") < stderr.index("line 2:")


def test_fail_fast_stops_at_the_first_failure(tmp_path, clips, job_line, write_manifest, batch_cli):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x00" * 1000)
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [job_line(corrupt, tmp_path / "a.mp4"), job_line(clips[0], tmp_path / "b.mp4")],
    )
    code, results, _ = batch_cli(manifest, "--fail-fast")
    assert code == EXIT_BATCH_NONE_SUCCEEDED
    assert [r["status"] for r in results] == ["failed"]
    assert not (tmp_path / "b.mp4").exists()


def test_ctrl_c_abandons_the_current_job_without_a_partial_file(
    tmp_path, monkeypatch, clips, job_line, write_manifest, batch_cli, partial_files
):
    from skyaudio_cli.media.video_writer import VideoWriter

    real_write = VideoWriter.write

    def interrupted_on_b(self, frames):  # Ctrl-C arriving while b.mp4 is being encoded
        if self.frames_written and self.path.name == "b.mp4":
            raise KeyboardInterrupt
        real_write(self, frames)

    monkeypatch.setattr(VideoWriter, "write", interrupted_on_b)
    names = ["a.mp4", "b.mp4", "c.mp4"]
    manifest = write_manifest(tmp_path / "jobs.jsonl", [job_line(clips[0], tmp_path / n) for n in names])

    code, results, stderr = batch_cli(manifest)

    assert code == 130 and "--resume" in stderr
    assert [(r["output"], r["status"]) for r in results] == [(str(tmp_path / "a.mp4"), "ok")]
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["a.mp4"]
    assert partial_files(tmp_path) == []


def test_sigterm_mid_batch_then_resume_finishes_without_redoing(
    tmp_path, clips, job_line, write_manifest, batch_cli, assert_complete, partial_files
):
    out = tmp_path / "out"
    out.mkdir()
    jobs = 4
    audio = {n: clips[n % len(clips)] for n in range(jobs)}
    manifest = write_manifest(
        tmp_path / "jobs.jsonl", [job_line(audio[n], out / f"{n}.mp4", seed=n) for n in range(jobs)]
    )
    first_results = tmp_path / "first.jsonl"
    with (tmp_path / "stderr.txt").open("w") as stderr:
        batch = subprocess.Popen(
            [sys.executable, "-m", "skyaudio_cli", "batch", str(manifest), "--results", str(first_results)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        deadline = time.monotonic() + 180
        while not (first_results.exists() and first_results.read_text()) and batch.poll() is None:
            assert time.monotonic() < deadline, "no result line within 3 minutes"
            time.sleep(0.05)
        batch.send_signal(signal.SIGTERM)
        assert batch.wait(timeout=120) == 143, (tmp_path / "stderr.txt").read_text()

    first = [json.loads(line) for line in first_results.read_text().splitlines()]
    finished = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}
    assert partial_files(out) == []
    assert 1 <= len(first) <= len(finished) < jobs  # a job may complete just before its result line
    assert all(r["status"] == "ok" and f"{r['index']}.mp4" in finished for r in first)
    for name in finished:
        assert_complete(out / name, audio[int(name.split(".")[0])])

    code, resumed, _ = batch_cli(manifest, "--resume")

    assert code == 0
    statuses = {r["index"]: r["status"] for r in resumed}
    assert statuses == {n: "skipped" if f"{n}.mp4" in finished else "ok" for n in range(jobs)}
    for n in range(jobs):
        assert_complete(out / f"{n}.mp4", audio[n])
    # Nothing finished before the kill was written again.
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == finished


def test_two_cpu_workers_share_the_queue_and_merge_results_in_order(
    tmp_path, clips, job_line, write_manifest, batch_cli, assert_complete
):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"\x00" * 1000)
    audio = [clips[0], corrupt, clips[1]]
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [job_line(a, tmp_path / f"{n}.mp4", device="auto", seed=n) for n, a in enumerate(audio)],
    )
    code, results, stderr = batch_cli(manifest, "--devices", "cpu,cpu")
    assert code == EXIT_BATCH_SOME_FAILED, stderr
    assert [(r["index"], r["status"]) for r in results] == [(0, "ok"), (1, "failed"), (2, "ok")]
    assert "corrupt.wav" in results[1]["error"]
    for n in (0, 2):
        assert_complete(tmp_path / f"{n}.mp4", audio[n])
    # Each worker loads the model at most once, whatever number of jobs it takes.
    assert 1 <= sum(r["load_seconds"] > 0 for r in results) <= 2
