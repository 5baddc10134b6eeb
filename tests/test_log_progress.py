"""Progress for logs (stderr not a terminal): plain lines at a steady interval, and one-line warnings."""

import subprocess
import sys
from types import SimpleNamespace

from skyaudio_cli.tasks.render import LogProgress


def reporter(mode: str, clock_values: list[float]) -> tuple[LogProgress, list[str]]:
    lines: list[str] = []
    ticks = iter(clock_values)
    stream = SimpleNamespace(windows=3, mode=mode)
    return LogProgress(stream, interval=30, clock=lambda: next(ticks), write=lines.append), lines


def test_a_line_at_the_first_step_every_interval_and_at_the_end():
    progress, lines = reporter("skyreels", [100, 110, 120, 141, 150])  # the first tick starts the clock
    for done in (1, 2, 5, 12):  # 12 steps = 3 windows x 4 steps
        progress(done, 12)
    assert lines == [
        # ETA = seconds per step after the first (which also encodes the inputs) * steps left:
        # at step 1 the first step's 10 s * 11 = 110 s; at step 5 (141 - 110) / 4 * 7 = 54.25 s
        "denoising: window 1/3, step 1/12 (8%), elapsed 0:00:10, ETA 0:01:50",
        "denoising: window 2/3, step 5/12 (41%), elapsed 0:00:41, ETA 0:00:54",
        "denoising: window 3/3, step 12/12 (100%), elapsed 0:00:50, ETA 0:00:00",
    ]


def test_fused_windows_have_no_current_window():
    progress, lines = reporter("fusion", [0, 4000])
    progress(1, 12)
    assert lines == ["denoising: step 1/12 (8%), elapsed 1:06:40, ETA 12:13:20"]


def test_a_long_warning_is_one_line_in_a_log():
    message = "model 'x' has RANDOM weights " + "and a long explanation " * 10
    done = subprocess.run(
        [sys.executable, "-c", f"from skyaudio_cli import console; console.warn({message!r})"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == f"warning: {message}\n"
