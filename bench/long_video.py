"""Long video on the tiny random model (CPU): peak memory and wall time vs audio length, and seams.

    python bench/long_video.py --seconds 10 60 600 --vae linear
    python bench/long_video.py --seconds 10 --vae real --seam-seconds 12

Each length runs `skyaudio generate` in a fresh subprocess (its own peak RSS, VmHWM)
on a synthetic speech-like signal. `--vae linear` swaps the tiny model's Wan VAE for the linear
stand-in the tests use (tests/e2e/fast_vae.py): on a 2-core CPU the tiny Wan VAE
costs ~20 s per 81-frame window (per-op overhead), which would make 600 s of audio take hours;
its per-window cost and memory do not depend on the video's length, so the stand-in changes the
constant, not the scaling being measured. The seam metric runs the pipeline in-process on one
deterministic clip and compares the mean absolute frame-to-frame difference across window
boundaries with the same quantity inside windows (ratio ~1 = no visible seam).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def speech_like(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Syllable-rate amplitude-modulated harmonics: a deterministic stand-in for speech."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / sample_rate) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * voice * envelope).astype(np.float32)


def write_wav(path: Path, wave: np.ndarray) -> Path:
    import wave as wav_module

    with wav_module.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes((np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# Runs one skyaudio command in a fresh process (optionally with the linear VAE), prints its peak RSS.
WORKER = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "peak_memory_worker.py"


def measure_length(
    model: Path, portrait: Path, seconds: float, resolution: str, vae: str, work: Path
) -> dict:
    audio = write_wav(work / f"speech_{seconds:g}s.wav", speech_like(seconds))
    out = work / f"out_{seconds:g}s.mp4"
    args = ["generate", "-p", portrait, "-a", audio, "-m", model, "-o", out, "--resolution", resolution,
            "--device", "cpu", "--dtype", "fp32", "--json", "-y"]  # fmt: skip
    done = subprocess.run([sys.executable, str(WORKER), vae, *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"generate failed for {seconds} s: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    result, usage = json.loads(lines[-2]), json.loads(lines[-1])
    return {"audio_s": seconds, "vae": vae, "frames": result["frames"], "windows": result["windows"], **usage}


def seam_metric(model: Path, portrait: Path, seconds: float, resolution: str) -> dict:
    from PIL import Image

    from skyaudio_cli.long_video.windows import plan_windows
    from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

    pipe = TalkingVideoPipeline.from_pretrained(model, device="cpu", dtype="fp32")
    image = Image.open(portrait).convert("RGB")
    results = {}
    for mode in ("skyreels", "infinitetalk", "fusion"):
        stream = pipe.stream(portrait=image, audio=speech_like(seconds), resolution=resolution, seed=0,
                             long_video_mode=mode)  # fmt: skip
        frames = np.concatenate(list(stream.frames)).astype(np.float32)
        steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # steps[i]: frame i -> i+1
        if mode == "fusion":
            # Fused windows start every (21 - 5) latents = 64 frames; their seams would sit there.
            starts = range(64, len(frames), 64)
        else:
            scheme_drop = 12 if mode == "skyreels" else 0
            plan = plan_windows(len(frames), window=81, motion=pipe.defaults.motion_frames, drop=scheme_drop)
            starts = [w.emitted.start for w in plan.windows[1:]]
        boundary = [steps[s - 1] for s in starts if 0 < s <= len(steps)]
        inside = np.delete(steps, [s - 1 for s in starts if 0 < s <= len(steps)])
        results[mode] = {
            "boundary_mean_abs_diff": round(float(np.mean(boundary)), 3),
            "inside_mean_abs_diff": round(float(np.mean(inside)), 3),
            "ratio": round(float(np.mean(boundary) / np.mean(inside)), 3),
            "boundaries": len(boundary),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, nargs="*", default=[10, 60, 600])
    parser.add_argument("--seam-seconds", type=float, default=0.0, help="also run the seam metric")
    parser.add_argument("--resolution", default="64x64")
    parser.add_argument("--vae", choices=["real", "linear"], default="linear")
    args = parser.parse_args()

    from PIL import Image
    from skimage import data

    from skyaudio_cli.tiny import make_tiny

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = make_tiny(work / "tiny")
        portrait = work / "astronaut.png"
        Image.fromarray(data.astronaut()).save(portrait)
        for seconds in args.seconds:
            print(
                json.dumps(measure_length(model, portrait, seconds, args.resolution, args.vae, work)),
                flush=True,
            )
        if args.seam_seconds:
            print(json.dumps({"seam": seam_metric(model, portrait, args.seam_seconds, args.resolution)}))


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench wall time {time.monotonic() - started:.0f} s", file=sys.stderr)
