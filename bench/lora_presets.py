"""Transformer passes per output second: infinitetalk at its defaults vs. its LoRA presets.

Recipes (steps, guidance scales, window and motion frames) are read from weights.toml through
``family_defaults``; passes per step from ``GuidanceScales.passes`` (batched into one forward);
windows from the long-video planner for a ``--seconds`` clip. Timed: one denoising step of every
recipe on the random-weight DiT (full size on CUDA, the scaled-down one on CPU, as
bench/throughput.py), times steps x windows, per output second. Also timed: fusing / re-fusing a
rank-32 LoRA on every block Linear of that model (what a batch job with other LoRAs pays).

    python bench/lora_presets.py                 # --scale tiny on a CPU
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from throughput import (  # noqa: E402 - the sibling benchmark's model and timing
    RELEASE_DIMS,
    RELEASE_HEADS,
    RESOLUTIONS,
    TINY_DIMS,
    TINY_DOWNSCALE,
    TINY_HEADS,
    build_random_model,
    make_inputs,
    time_step,
)

from skyaudio_cli.long_video.loop import MOTION_SCHEMES, LongVideoMode  # noqa: E402
from skyaudio_cli.long_video.windows import plan_windows  # noqa: E402
from skyaudio_cli.model.checkpoint import load_transformer, set_adapters  # noqa: E402
from skyaudio_cli.model.cost import forward_flops  # noqa: E402
from skyaudio_cli.pipeline.family import family_defaults  # noqa: E402
from skyaudio_cli.sampling.guidance import GuidanceScales  # noqa: E402

RECIPES = ("infinitetalk", "infinitetalk-lightx2v", "infinitetalk-fusionx")
LORA_RANK = 32


def recipe_cost(family: str, seconds: float) -> dict:
    d = family_defaults(family)
    passes = len(GuidanceScales(text=d.text_scale, audio=d.audio_scale).passes())
    frames = round(seconds * d.fps)
    scheme = MOTION_SCHEMES[LongVideoMode(d.long_video_mode)]
    windows = len(
        plan_windows(frames, window=d.frames_per_window, motion=d.motion_frames, drop=scheme.drop).windows
    )
    return {
        "family": family, "steps": d.steps, "passes": passes, "windows": windows,
        "frames": d.frames_per_window, "passes_per_output_second": d.steps * passes * windows / seconds,
    }  # fmt: skip


def refuse_seconds(dims: dict, heads: int, repeats: int) -> dict:
    """Fuse, re-fuse and unload a rank-32 LoRA on every block Linear of a bf16 checkpoint on disk."""
    model = build_random_model(dims, heads, torch.device("cpu"), torch.bfloat16)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "model.safetensors"
        save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(checkpoint))
        generator = torch.Generator().manual_seed(0)
        lora, touched = {}, 0
        for name, module in model.named_modules():
            if name.startswith("blocks.") and isinstance(module, torch.nn.Linear):
                out_features, in_features = module.weight.shape
                lora[f"transformer.{name}.lora_A.weight"] = torch.randn(
                    LORA_RANK, in_features, generator=generator
                )
                lora[f"transformer.{name}.lora_B.weight"] = torch.randn(
                    out_features, LORA_RANK, generator=generator
                )
                touched += module.weight.numel()
        adapter = Path(folder) / "lora.safetensors"
        save_file(lora, str(adapter))
        del model
        timings = {"load": [], "fuse": [], "unload": []}
        for _ in range(repeats):
            started = time.perf_counter()
            loaded = load_transformer(checkpoint, dtype=torch.bfloat16)
            timings["load"].append(time.perf_counter() - started)
            for what, adapters in (("fuse", [(adapter, 1.0)]), ("unload", [])):
                started = time.perf_counter()
                set_adapters(loaded, adapters)
                timings[what].append(time.perf_counter() - started)
    total = sum(parameter.numel() for parameter in loaded.parameters())
    return {
        "touched_parameters": touched, "all_parameters": total,
        **{f"{what}_seconds": sorted(values)[len(values) // 2] for what, values in timings.items()},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", choices=("full", "tiny"), default="full" if torch.cuda.is_available() else "tiny"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length for the window count")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dims, heads, downscale = (
        (RELEASE_DIMS, RELEASE_HEADS, 1) if args.scale == "full" else (TINY_DIMS, TINY_HEADS, TINY_DOWNSCALE)
    )
    width, height = (side // downscale // 16 * 16 for side in RESOLUTIONS["480p"])
    full_tflop = sum(forward_flops(*RESOLUTIONS["480p"], 81).values()) / 1e12
    model = build_random_model(dims, heads, device, torch.bfloat16)
    inputs = make_inputs(model, 1, width, height, device, torch.bfloat16)

    size = f"{args.scale} size ({dims['layers']} blocks x {dims['dim']}), {width}x{height}, on {device}"
    print(
        f"{args.seconds:g} s clip at 480p; timed: {size}; full-size forward: {full_tflop:.0f} TFLOP per pass"
    )
    print(
        "| recipe | steps | passes/step | windows | passes per output s | x fewer"
        " | full-size PFLOP per output s | timed s/step | timed transformer s per output s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    baseline = None
    for family in RECIPES:
        cost = recipe_cost(family, args.seconds)
        per_second = cost["passes_per_output_second"]
        baseline = baseline or per_second
        step = time_step(model, inputs, cost["passes"], True, device, args.repeats)
        timed = step * cost["steps"] * cost["windows"] / args.seconds
        print(
            f"| {family} | {cost['steps']} | {cost['passes']} | {cost['windows']} | {per_second:.2f} | "
            f"{baseline / per_second:.1f} | {per_second * full_tflop / 1e3:.1f} | {step:.3f} | {timed:.2f} |"
        )
    del model
    fusion = refuse_seconds(dims, heads, args.repeats)
    touched, total = fusion["touched_parameters"] / 1e6, fusion["all_parameters"] / 1e6
    print(
        f"\nrank-{LORA_RANK} LoRA on every block Linear ({touched:.1f} M of {total:.1f} M parameters, bf16):"
        f" load {fusion['load_seconds']:.3f} s, fuse/re-fuse {fusion['fuse_seconds']:.3f} s,"
        f" unload {fusion['unload_seconds']:.3f} s"
    )


if __name__ == "__main__":
    main()
