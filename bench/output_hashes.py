"""sha256 of the tiny model's outputs for fixed seeds: a refactor must leave them unchanged.

Runs generate (a2v), extend, edit-lipsync and HuMo text-only through the CLI on real inputs
(astronaut portrait, espeak-ng speech) and prints one `task sha256` line per output, so two runs
(before / after a change) can be diffed.

    python bench/output_hashes.py --work /tmp/hashes
"""

import argparse
import hashlib
import shutil
import subprocess
from pathlib import Path

from PIL import Image
from skimage import data

from skyaudio_cli.cli.app import main as skyaudio
from skyaudio_cli.tiny import make_tiny

LONG_SENTENCE = "This sentence is long enough to need several windows of video, chained one after the other."
RUNTIME = ["--device", "cpu", "--dtype", "fp32", "--steps", "2", "--seed", "7", "--overwrite"]


def run(args: list) -> None:
    try:
        skyaudio([str(a) for a in args])
    except SystemExit as done:
        if done.code:
            raise SystemExit(f"{args[0]} failed with exit {done.code}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    work = parser.parse_args().work
    work.mkdir(parents=True, exist_ok=True)
    portrait, speech = work / "astronaut.png", work / "speech.wav"
    Image.fromarray(data.astronaut()).save(portrait)
    long_speech = work / "long.wav"
    subprocess.run(
        ["espeak-ng", "-s", "170", "-w", str(speech), "Hello there, nice to meet you."], check=True
    )
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(long_speech), LONG_SENTENCE], check=True)
    models = {}
    for layout in ("skyreels-v3-a2v", "humo-1.7b"):
        models[layout] = work / layout
        if not (models[layout] / "skyaudio_model.json").exists():
            shutil.rmtree(models[layout], ignore_errors=True)
            make_tiny(models[layout], layout=layout)
    a2v = ["--model", models["skyreels-v3-a2v"], "--resolution", "32x32", *RUNTIME]
    modes = ("skyreels", "infinitetalk", "fusion")
    names = ["generate", "extend", "edit-lipsync", "humo-text", "long-humo", *(f"long-{m}" for m in modes)]
    outputs = {name: work / f"{name}.mp4" for name in names}
    run(["generate", "-p", portrait, "-a", speech, "-o", outputs["generate"], *a2v])
    run(["extend", "-v", outputs["generate"], "-a", speech, "-o", outputs["extend"], *a2v])
    run(["edit-lipsync", "-v", outputs["generate"], "-a", speech, "-o", outputs["edit-lipsync"],
         "--face-box", "8,8,16,16", *a2v])  # fmt: skip
    run(["generate", "--prompt", "A woman in a red coat talks", "-a", speech, "-o", outputs["humo-text"],
         "--model", models["humo-1.7b"], "--resolution", "64x64", *RUNTIME])  # fmt: skip
    for mode in modes:
        run(["generate", "-p", portrait, "-a", long_speech, "-o", outputs[f"long-{mode}"],
             "--long-video-mode", mode, *a2v])  # fmt: skip
    run(["generate", "-p", portrait, "-a", long_speech, "-o", outputs["long-humo"],
         "--model", models["humo-1.7b"], "--resolution", "64x64", *RUNTIME])  # fmt: skip
    for name, path in outputs.items():
        print(name, hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
