"""`skyaudio doctor`: one JSON object describing the machine, without loading any model."""

import json
import os
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
    # The CLI's own names, as --attention and --dtype take them.
    assert report["runtime"]["attention"] in ("sdpa", "xformers")
    assert report["runtime"]["dtype"] == "bf16"
    assert report["host_memory"]["total_gib"] > 0
    assert report["ffmpeg"]["path"]
    assert isinstance(report["default_weights"]["downloaded"], bool)
    modes = {row["mode"]: row["gpu_weights_gib"] for row in report["memory_modes"]}
    assert modes["offload"] < modes["fp8"] < modes["bf16"]


def test_doctor_without_a_gpu_says_so_and_does_not_import_torch():
    probe = (
        "import sys\nfrom skyaudio_cli.cli.app import main\n"
        "try:\n    main(['doctor', '--json'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)"
    )
    # An empty CUDA_VISIBLE_DEVICES hides every GPU, so this holds on GPU machines too.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    runtime = json.loads(done.stdout)["runtime"]
    assert runtime == {
        "device": "cpu",
        "dtype": "bf16",
        "attention": "sdpa",
        "note": "no CUDA GPU (CUDA_VISIBLE_DEVICES='' hides every GPU): the real models need an NVIDIA GPU; "
        "on this machine only the tiny test models (skyaudio weights make-tiny) run",
    }
    assert done.stderr.strip().endswith("NO-TORCH")
