"""Fault injection: signals, SIGKILL, a full disk and a folder made read-only, at several points of a
job. Every fault ends in its documented exit code, one `error:` line, exactly one JSON object with
--json, no file left in the output folder or the temp folder, and no ffmpeg left running.

The CLI runs in a fresh process (fault_worker.py) in a session of its own, so "the process group"
is the CLI and its ffmpeg children; SIGINT is restored to its default in the child, since a shell
starts background jobs (and so, often, test runners) with SIGINT ignored.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import skyaudio_cli
from skyaudio_cli.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_TERMINATED

from .fault_worker import processes_with

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("fault_worker.py")
SOURCES = Path(skyaudio_cli.__file__).parents[1]
STOPPED = {
    "INT": (EXIT_INTERRUPTED, "interrupted (SIGINT)"),
    "TERM": (EXIT_TERMINATED, "terminated (SIGTERM)"),
}


@pytest.fixture(scope="module")
def speech(tmp_path_factory, make_wav):
    """0.3 s (8 frames): longer than the short video, so edit-lipsync loops it."""
    t = np.arange(round(0.3 * 16000)) / 16000
    return make_wav(tmp_path_factory.mktemp("audio") / "speech.wav", 0.3 * np.sin(2 * np.pi * 180 * t))


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, moving_face_frames):
    """5 frames of the moving face at 160x120, 25 fps."""
    from skyaudio_cli.media.video import VideoWriter

    path = tmp_path_factory.mktemp("video") / "short.mp4"
    with VideoWriter(path, fps=25, width=160, height=120) as writer:
        writer.write(np.ascontiguousarray(moving_face_frames[:5, ::2, ::2]))
    return path


@pytest.fixture
def folders(tmp_path):
    out, temp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temp.mkdir()
    return out, temp


def job_args(task: str, output: Path, model, portrait, video, speech) -> list[str]:
    """CLI arguments for a quick tiny-model job of `task`."""
    # infinitetalk chaining: no preview window to generate first (edit-lipsync picks its own).
    chaining = ["--resolution", "32x32", "--long-video-mode", "infinitetalk"]
    inputs = {
        "generate": ["-p", portrait, *chaining],
        "extend": ["-v", video, *chaining],
        "edit-lipsync": ["-v", video, "--resolution", "32x32", "--face-box", "50,30,60,60"],
    }[task]
    runtime = ["--model", model, "--device", "cpu", "--dtype", "fp32", "--steps", "1", "--json"]
    return [str(a) for a in [task, *inputs, "-a", speech, "-o", output, *runtime]]


@pytest.fixture
def command(tiny_model, portrait_png, short_video, speech):
    """`command(task, output)`: `job_args` with the session's inputs."""
    return lambda task, output: job_args(task, output, tiny_model, portrait_png, short_video, speech)


def _restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_worker(args, temp: Path, *, point="none", fault="none", tmpfs=None, listing=None, direct=True):
    """The worker in a session of its own; `direct`: one CLI run (ARGS after `--`), else worker options."""
    worker = [sys.executable, str(WORKER), point, fault] if direct else [sys.executable, str(WORKER)]
    if tmpfs is not None:
        worker = ["unshare", "--user", "--map-root-user", "--mount", *worker, "--mount-tmpfs", tmpfs]
        worker += ["--listing", str(listing)]
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": f"{SOURCES}{os.pathsep}{WORKER.parent}"}
    return subprocess.Popen(
        [*worker, "--", *args] if direct else [*worker, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
        preexec_fn=_restore_sigint,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    # The session (the worker's own, from start_new_session) must be empty: no ffmpeg left behind.
    assert processes_with(session=process.pid) == [], stderr
    return process.returncode, stdout, stderr


def assert_one_error(code: int, stdout: str, stderr: str, expected_code: int, message: str) -> None:
    """`message`: the error line without 'error: ', or its start when it ends with '...'."""
    assert code == expected_code, stderr
    errors = [line.removeprefix("error: ") for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    if message.endswith("..."):
        assert errors[0].startswith(message[:-3]), errors[0]
    else:
        assert errors[0] == message
    assert stdout.count("\n") == 1
    assert json.loads(stdout) == {"status": "error", "exit_code": expected_code, "error": errors[0]}


# (task, point, fault): every point of a generate job with both signals, to the process and to the
# group; the other commands where they differ (their own writers and the looped source copy).
SIGNAL_CASES = [
    ("generate", "audio-decode", "process-INT"),
    ("generate", "audio-decode", "group-TERM"),
    ("generate", "model-load", "process-TERM"),
    ("generate", "model-load", "group-INT"),
    ("generate", "denoising", "process-INT"),
    ("generate", "denoising", "process-TERM"),
    ("generate", "denoising", "group-INT"),
    ("generate", "denoising", "group-TERM"),
    ("generate", "mux", "process-TERM"),
    ("generate", "mux", "group-INT"),
    ("extend", "denoising", "group-TERM"),
    ("extend", "mux", "process-INT"),
    ("edit-lipsync", "denoising", "process-TERM"),
    ("edit-lipsync", "mux", "group-INT"),
]


@pytest.fixture(scope="module")
def signal_results(tmp_path_factory, tiny_model, portrait_png, short_video, speech):
    """Every SIGNAL_CASES job run by one worker process (one torch import): case -> (result, out, temp)."""
    root = tmp_path_factory.mktemp("signals")
    cases, folders = [], []
    for number, (task, point, fault) in enumerate(SIGNAL_CASES):
        out, temp = root / f"{number}-out", root / f"{number}-tmp"
        out.mkdir()
        temp.mkdir()
        args = job_args(task, out / "talk.mp4", tiny_model, portrait_png, short_video, speech)
        cases.append({"point": point, "fault": fault, "temp": str(temp), "args": args})
        folders.append((out, temp))
    cases_file = root / "cases.json"
    cases_file.write_text(json.dumps(cases))
    code, _, stderr = finish(start_worker(["--cases", str(cases_file)], root, direct=False))
    assert code == 0, stderr
    results = json.loads(cases_file.with_suffix(".results.json").read_text())
    return {
        case: (result, *where) for case, result, where in zip(SIGNAL_CASES, results, folders, strict=True)
    }


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=["-".join(c) for c in SIGNAL_CASES])
def test_signal_at_each_point_of_a_job(signal_results, case):
    result, out, temp = signal_results[case]
    expected_code, reason = STOPPED[case[2].split("-")[1]]

    assert_one_error(
        result["code"], result["stdout"], result["stderr"], expected_code,
        f"{reason}: the job was abandoned and left no partial file",
    )  # fmt: skip
    assert result["children"] == []  # ffmpeg stopped and reaped
    assert os.listdir(out) == [] and os.listdir(temp) == []


def _wait_for_partial(process: subprocess.Popen, out: Path) -> None:
    """Until the encoder has created the hidden temporary output (the job is generating)."""
    deadline = time.monotonic() + 120
    while not any(name.startswith(".") for name in os.listdir(out)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no temporary output within 2 minutes"
        time.sleep(0.01)


@pytest.mark.parametrize(("target", "name"), [("process", "TERM"), ("group", "INT")])
def test_signal_from_outside_while_the_video_is_written(folders, command, target, name):
    out, temp = folders
    args = [*command("generate", out / "talk.mp4"), "--steps", "6"]
    process = start_worker(args, temp)
    _wait_for_partial(process, out)
    number = getattr(signal, f"SIG{name}")
    if target == "group":
        os.killpg(process.pid, number)
    else:
        process.send_signal(number)

    code, stdout, stderr = finish(process)

    expected_code, reason = STOPPED[name]
    assert_one_error(
        code, stdout, stderr, expected_code, f"{reason}: the job was abandoned and left no partial file"
    )
    assert os.listdir(out) == [] and os.listdir(temp) == []


def test_after_sigkill_the_next_run_removes_the_stale_temporary_file(folders, command, run_cli):
    out, temp = folders
    args = [*command("generate", out / "talk.mp4"), "--steps", "6"]
    process = start_worker(args, temp)
    _wait_for_partial(process, out)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its ffmpeg: nothing can clean up
    process.communicate()
    stale = os.listdir(out)
    assert len(stale) == 1 and stale[0].startswith(".talk.partial-")

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    assert json.loads(stdout)["status"] == "ok"
    assert os.listdir(out) == ["talk.mp4"]


def _can_mount_tmpfs(tmp_path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        str(tmp_path),
    ]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("no user namespaces to mount a small tmpfs in (the ENOSPC writer test still runs)")


def test_output_disk_full(tmpfs, folders, command, tmp_path):
    out, temp = folders
    listing = tmp_path / "left.json"
    output = out / "talk.mp4"

    code, stdout, stderr = finish(
        start_worker(command("generate", output), temp, tmpfs=f"{out}:8k", listing=listing)
    )

    assert_one_error(
        code, stdout, stderr, EXIT_RUNTIME, f"writing video {output} failed: No space left on device"
    )
    assert json.loads(listing.read_text()) == [] and os.listdir(temp) == []


def test_temp_folder_full(tmpfs, folders, command, tmp_path, speech):
    out, temp = folders
    listing = tmp_path / "left.json"

    code, stdout, stderr = finish(
        start_worker(command("generate", out / "talk.mp4"), temp, tmpfs=f"{temp}:4k", listing=listing)
    )

    assert_one_error(
        code,
        stdout,
        stderr,
        EXIT_RUNTIME,
        f"decoding {speech}: no room for the decoded samples in {temp} ...",
    )
    assert json.loads(listing.read_text()) == [] and os.listdir(out) == []


def test_output_folder_made_read_only_mid_run(tmpfs, folders, command, tmp_path):
    """Nothing can be removed from a read-only folder: the encoded temporary video stays (the next
    run removes it, see the SIGKILL test); the error is ffmpeg's, not the failed cleanup's."""
    out, temp = folders
    listing = tmp_path / "left.json"
    output = out / "talk.mp4"

    code, stdout, stderr = finish(
        start_worker(
            command("generate", output),
            temp,
            point="mux",
            fault="readonly",
            tmpfs=f"{out}:16m",
            listing=listing,
        )
    )

    assert_one_error(
        code, stdout, stderr, EXIT_RUNTIME, f"writing video {output} failed: Read-only file system"
    )
    left = json.loads(listing.read_text())
    assert len(left) == 1 and left[0].startswith(".talk.partial-")
    assert os.listdir(temp) == []


def test_writer_raising_enospc(tmp_path, monkeypatch, command, run_cli):
    """Without a tmpfs: the frame writer itself fails with ENOSPC after the first frame."""
    from skyaudio_cli.media.video_writer import VideoWriter

    real_write = VideoWriter.write

    def full_disk(self, frames):
        if self.frames_written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, frames)

    monkeypatch.setattr(VideoWriter, "write", full_disk)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    out = tmp_path / "out"
    out.mkdir()

    code, stdout, stderr = run_cli(command("generate", out / "talk.mp4"))

    assert_one_error(
        code,
        stdout,
        stderr,
        EXIT_RUNTIME,
        f"{out / 'talk.mp4'}: could not write video (No space left on device)",
    )
    assert os.listdir(out) == [] and os.listdir(tmp_path / "tmp") == []
