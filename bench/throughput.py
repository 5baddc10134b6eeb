"""Denoising throughput of the audio DiT: our pipeline's settings against a straightforward baseline.

Builds the architecture with random weights (nothing is downloaded) straight on the device in the
compute dtype, times transformer forwards for one 81-frame window, and reports seconds per denoising
step, seconds per second of output video and model FLOP utilisation (FLOPs counted analytically in
skyaudio_cli.model.cost).

- ours: the guidance passes batched into one forward, the best attention backend available
  (xformers if installed on CUDA, else PyTorch SDPA), optionally torch.compile'd blocks (--compile).
- baseline: one forward per guidance pass, native attention, no compile.

Recipes: the distilled default (4 steps, 1 pass: text and audio scale 1) and the guided one
(40 steps, 3 passes: text 5, audio 4). VAE decoding and the encoders are not included.

    python bench/throughput.py                     # full 19B size on CUDA (needs ~40 GB at 480p)
    python bench/throughput.py --scale tiny        # scaled down, runs on a CPU
"""

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from skyaudio_cli.model.checkpoint import declare_storage_dtypes
from skyaudio_cli.model.cost import IMAGE_TOKENS, RELEASE_DIMS, RELEASE_HEADS, TEXT_TOKENS, forward_flops
from skyaudio_cli.model.transformer import AudioWanTransformer3DModel
from skyaudio_cli.pipeline.device import resolve_attention_backend

FPS = 25
FRAMES = 81
RESOLUTIONS = {"480p": (832, 480), "720p": (1280, 720)}
# Scaled-down stand-in for CPUs: same structure, 2 blocks of width 256, and a 1/4-size video.
TINY_DIMS = {**RELEASE_DIMS, "dim": 256, "layers": 2, "ffn": 704}
TINY_HEADS = 2
TINY_DOWNSCALE = 4
RECIPES = {"distilled (4 steps, 1 pass)": (4, 1), "guided (40 steps, 3 passes)": (40, 3)}
# Dense bf16 peak of the GPUs we report on (vendor datasheets, SXM parts).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def build_random_model(dims: dict[str, int], heads: int, device: torch.device, dtype: torch.dtype):
    """The DiT with random weights, allocated once, directly on ``device`` in its storage dtypes."""
    config = {
        "num_attention_heads": heads,
        "attention_head_dim": dims["dim"] // heads,
        "in_channels": dims["in_channels"],
        "text_dim": dims["text_dim"],
        "freq_dim": dims["freq_dim"],
        "ffn_dim": dims["ffn"],
        "num_layers": dims["layers"],
        "image_dim": dims["image_dim"],
        "added_kv_proj_dim": dims["dim"],
        "audio_feature_dim": dims["audio_feature_dim"],
        "audio_hidden_dim": dims["audio_hidden"],
        "audio_tokens": dims["audio_tokens"],
        "audio_token_dim": dims["audio_token_dim"],
    }
    with torch.device("meta"):
        model = AudioWanTransformer3DModel(**config)
    declare_storage_dtypes(model, dtype)  # as the loader stores them: fp32 norms/modulation/head
    model = model.to_empty(device=device)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter.shape[-1] if parameter.dim() > 1 else 1
            parameter.normal_(0.0, 1.0 / math.sqrt(fan_in))
    # Non-persistent RoPE tables were left uninitialised by to_empty: build them for real.
    model.rope = WanRotaryPosEmbed(model.config.attention_head_dim, model.config.patch_size, 1024).to(device)
    return model.eval()


def make_inputs(model, batch: int, width: int, height: int, device: torch.device, dtype: torch.dtype) -> dict:
    c = model.config
    latent_frames = 1 + (FRAMES - 1) // 4
    shape = (batch, c.in_channels, latent_frames, height // 8, width // 8)
    return {
        "hidden_states": torch.randn(shape, device=device, dtype=dtype),
        "timestep": torch.full((batch,), 500.0, device=device),
        "encoder_hidden_states": torch.randn(batch, TEXT_TOKENS, c.text_dim, device=device, dtype=dtype),
        "encoder_hidden_states_image": torch.randn(
            batch, IMAGE_TOKENS, c.image_dim, device=device, dtype=dtype
        ),
        "audio_embeds": torch.randn(
            batch, FRAMES, c.audio_window, c.audio_feature_dim, device=device, dtype=dtype
        ),
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(model, inputs: dict, passes: int, batched: bool, device: torch.device, repeats: int) -> float:
    """Median seconds of one denoising step (all guidance passes), after one warm-up step."""

    def step() -> None:
        if batched:
            model(**{k: v.expand(passes, *v.shape[1:]) for k, v in inputs.items()}, return_dict=False)
        else:
            for _ in range(passes):
                model(**inputs, return_dict=False)

    times = []
    with torch.no_grad():
        for attempt in range(repeats + 1):
            _synchronize(device)
            started = time.perf_counter()
            step()
            _synchronize(device)
            if attempt:  # the first one warms up (and compiles)
                times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", choices=("full", "tiny"), default="full" if torch.cuda.is_available() else "tiny"
    )
    parser.add_argument("--resolutions", nargs="+", choices=tuple(RESOLUTIONS), default=list(RESOLUTIONS))
    parser.add_argument("--compile", action="store_true", help="compile the blocks in our variant")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--json", type=Path, default=Path("bench/throughput.json"))
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16
    dims, heads, downscale = (
        (RELEASE_DIMS, RELEASE_HEADS, 1) if args.scale == "full" else (TINY_DIMS, TINY_HEADS, TINY_DOWNSCALE)
    )
    model = build_random_model(dims, heads, device, dtype)
    best_attention = resolve_attention_backend("auto", device)
    machine = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    peak = peak_flops(device)
    rows = []
    for resolution in args.resolutions:
        width, height = (side // downscale // 16 * 16 for side in RESOLUTIONS[resolution])
        inputs = make_inputs(model, 1, width, height, device, dtype)
        flops_per_pass = sum(forward_flops(width, height, FRAMES, dims).values())
        for variant, batched, attention, compiled in (
            ("baseline", False, "native", False),
            ("ours", True, best_attention, args.compile),
        ):
            model.set_attention_backend(attention)
            if compiled:
                model.compile_repeated_blocks()
            for recipe, (steps, passes) in RECIPES.items():
                seconds = time_step(model, inputs, passes, batched, device, args.repeats)
                achieved = flops_per_pass * passes / seconds
                rows.append({
                    "resolution": f"{resolution} ({width}x{height})", "variant": variant,
                    "attention": attention, "compiled": compiled, "recipe": recipe,
                    "seconds_per_step": seconds,
                    "seconds_per_output_second": steps * seconds / (FRAMES / FPS),
                    "tflops_per_pass": flops_per_pass / 1e12, "achieved_tflops": achieved / 1e12,
                    "mfu": achieved / peak if peak else None,
                })  # fmt: skip
            if compiled:  # the next resolution's baseline needs plain blocks
                del model
                torch._dynamo.reset()
                model = build_random_model(dims, heads, device, dtype)

    print(f"machine: {machine}; {args.scale} size ({dims['layers']} blocks x {dims['dim']}), {FRAMES} frames")
    columns = ["resolution", "variant", "attention", "compile", "recipe", "s/step", "s per output s"]
    print("| " + " | ".join([*columns, "TFLOP/pass", "TFLOP/s", "MFU"]) + " |")
    print("|" + "---|" * (len(columns) + 3))
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        cells = [r["resolution"], r["variant"], r["attention"], r["compiled"], r["recipe"]]
        cells += [f"{r['seconds_per_step']:.3f}", f"{r['seconds_per_output_second']:.2f}"]
        cells += [f"{r['tflops_per_pass']:.3f}", f"{r['achieved_tflops']:.3f}", mfu]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    full_flops = {
        name: sum(forward_flops(*RESOLUTIONS[name], FRAMES).values()) / 1e12 for name in RESOLUTIONS
    }
    args.json.write_text(json.dumps({"machine": machine, "scale": args.scale, "dims": dims, "rows": rows,
                                     "full_size_tflops_per_pass": full_flops}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
