"""`skyaudio doctor`: one JSON object describing the machine, without loading any model."""

import json
import subprocess
import sys


def test_doctor_json_reports_runtime_choices_and_memory_modes():
    done = subprocess.run(
        [sys.executable, "-m", "skyaudio_cli", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "ok"
    assert report["versions"]["torch"] and report["versions"]["diffusers"]
    assert report["runtime"]["attention_backend"] in ("native", "xformers")
    assert report["host_memory"]["total_gib"] > 0
    assert report["ffmpeg"]["path"]
    assert isinstance(report["default_weights"]["downloaded"], bool)
    modes = {row["mode"]: row["gpu_weights_gib"] for row in report["memory_modes"]}
    assert modes["offload"] < modes["fp8"] < modes["bf16"]
