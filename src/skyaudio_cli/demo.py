"""`make demo`: one end-to-end `generate` run with a real portrait and real speech.

Uses the default model's real weights when they are downloaded; otherwise builds the tiny random
model and says loudly that the result is noise. Inputs: scikit-image's public-domain astronaut
portrait and a sentence synthesised by espeak-ng.

    python -m skyaudio_cli.demo [--out out/demo]
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from skyaudio_cli.cli.app import main as skyaudio
from skyaudio_cli.errors import WeightsError
from skyaudio_cli.tasks.jobs import DEFAULT_MODEL

SENTENCE = "Hello! I am a talking portrait."


def synthesize_speech(path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("demo: espeak-ng is needed to synthesise the demo speech (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), SENTENCE], check=True)


def write_portrait(path: Path) -> None:
    try:
        from skimage import data
    except ImportError:
        sys.exit("demo: scikit-image provides the demo portrait (pip install -e '.[test]')")
    from PIL import Image

    Image.fromarray(data.astronaut()).save(path)


def pick_model(out: Path) -> str:
    from skyaudio_cli.pipeline.library_logs import silence_libraries
    from skyaudio_cli.tiny import make_tiny
    from skyaudio_cli.weights import resolve_model

    try:
        resolve_model(DEFAULT_MODEL)
        return DEFAULT_MODEL
    except WeightsError:
        tiny = out / "tiny-random"
        if not (tiny / "skyaudio_model.json").exists():
            shutil.rmtree(tiny, ignore_errors=True)
            silence_libraries()
            make_tiny(tiny)
        print(
            f"\n*** No real weights for '{DEFAULT_MODEL}' found: running the TINY RANDOM model.\n"
            "*** The video will be NOISE. It shows that every step runs; fetch real weights with\n"
            f"*** `skyaudio weights fetch {DEFAULT_MODEL}` for a real talking video.\n",
            file=sys.stderr,
        )
        return str(tiny)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    speech, portrait = args.out / "speech.wav", args.out / "portrait.png"
    synthesize_speech(speech)
    write_portrait(portrait)
    model = pick_model(args.out)
    skyaudio(
        ["generate", "--portrait", str(portrait), "--audio", str(speech), "--model", model,
         "-o", str(args.out / "demo.mp4"), "--overwrite"]
    )  # fmt: skip


if __name__ == "__main__":
    main()
