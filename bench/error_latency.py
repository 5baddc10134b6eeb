"""Wall time of the simple mistakes a new user makes, from the shell: each should answer at once.

Also `doctor`, which a new user runs first and which should not take seconds either.

python bench/error_latency.py [--runs 3] [--tiny DIR] [--json out.json]

Every case is a fresh `python -m skyaudio_cli ...` process with the inputs it needs (an espeak-ng
sentence, the scikit-image astronaut, a tiny model made by `weights make-tiny` unless --tiny is
given). Reported: the exit code, the median wall time, and the first line of stderr.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def skyaudio(*args: str) -> list[str]:
    return [sys.executable, "-m", "skyaudio_cli", *args]


def make_inputs(folder: Path, tiny: Path | None) -> dict[str, Path]:
    from PIL import Image
    from skimage import data

    portrait = folder / "face.png"
    Image.fromarray(data.astronaut()).save(portrait)
    speech = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "Hello there."], check=True)
    if tiny is None:
        tiny = folder / "tiny"
        subprocess.run(skyaudio("weights", "make-tiny", str(tiny)), check=True, capture_output=True)
    full = folder / "full"
    full.mkdir()
    (full / "something").write_text("x")
    return {"portrait": portrait, "speech": speech, "tiny": tiny, "full": full}


def cases(inputs: dict[str, Path], out: Path) -> dict[str, list[str]]:
    generate = ["generate", "-p", str(inputs["portrait"]), "-a", str(inputs["speech"]), "-o", str(out)]
    tiny = ["-m", str(inputs["tiny"])]
    return {
        "unknown --model name": skyaudio(*generate, "-m", "nosuch"),
        "missing model folder": skyaudio(*generate, "-m", "/nonexistent/model"),
        "weights not downloaded": skyaudio(*generate, "-m", "skyreels-v3-a2v"),
        "--device cuda, no GPU": skyaudio(*generate, *tiny, "--device", "cuda"),
        "--attention xformers, not installed": skyaudio(*generate, *tiny, "--attention", "xformers"),
        "PNG passed as --audio": skyaudio(
            "generate", "-p", str(inputs["portrait"]), "-a", str(inputs["portrait"]), "-o", str(out), *tiny
        ),
        "make-tiny into a non-empty folder": skyaudio("weights", "make-tiny", str(inputs["full"])),
        "weights fetch nonexistent (reference)": skyaudio("weights", "fetch", "nonexistent"),
        "doctor (not an error; no GPU here)": skyaudio("doctor", "--json"),
    }


def time_case(command: list[str], runs: int, env: dict[str, str]) -> dict[str, object]:
    timings, done = [], None
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        timings.append(time.perf_counter() - started)
    return {
        "exit_code": done.returncode,
        "median_s": round(statistics.median(timings), 3),
        "last_stderr_line": (done.stderr.strip().splitlines() or [""])[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiny", type=Path, help="an existing `weights make-tiny` folder")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        # An empty Hugging Face cache and no network: "not downloaded" for every Hub family.
        env = {**os.environ, "HF_HUB_CACHE": str(folder / "hf-cache"), "HF_HUB_OFFLINE": "1"}
        inputs = make_inputs(folder, args.tiny)
        results = {
            name: time_case(command, args.runs, env)
            for name, command in cases(inputs, folder / "out.mp4").items()
        }
    print(json.dumps(results, indent=2))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
