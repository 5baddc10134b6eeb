"""Peak host memory while loading a DiT checkpoint larger than half of this machine's RAM.

Writes a random checkpoint in the release's original key layout (40 blocks, scaled-down width so it
fits the disk and RAM here), sharded like the release, then loads it with ``load_transformer`` in a
fresh subprocess per mode and reports peak RSS (ru_maxrss) and the peaks of its anonymous and
file-backed parts (sampled from /proc/self/status) as ratios of the checkpoint size.

    python bench/load_memory.py --dim 3072 --ffn 8192 --dir /tmp/skyaudio_load_bench

The checkpoint folder is deleted afterwards unless --keep is given.
"""

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from skyaudio_cli.model.cost import RELEASE_DIMS
from skyaudio_cli.model.tiny import WAN_SHARD_BASE, original_key_shapes

GB = 1e9
SHARD_BYTES = 2 * 10**9
# (label, load dtype, FP8 storage): every mode loads to the CPU, which holds the model afterwards.
MODES = {
    "bf16": (torch.bfloat16, False),
    "fp8": (torch.bfloat16, True),
}


def write_checkpoint(folder: Path, dim: int, ffn: int) -> int:
    """Random bf16 checkpoint in original keys, written shard by shard; returns its size in bytes."""
    shapes = original_key_shapes(**{**RELEASE_DIMS, "dim": dim, "ffn": ffn})
    folder.mkdir(parents=True, exist_ok=True)
    groups: list[list[str]] = [[]]
    size = 0
    for key, shape in shapes.items():
        if size >= SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += math.prod(shape) * 2
    weight_map = {}
    generator = torch.Generator().manual_seed(0)
    for index, keys in enumerate(groups):
        name = f"{WAN_SHARD_BASE}-{index + 1:05d}-of-{len(groups):05d}.safetensors"
        tensors = {key: torch.randn(shapes[key], generator=generator, dtype=torch.bfloat16) for key in keys}
        save_file(tensors, str(folder / name))
        weight_map.update(dict.fromkeys(keys, name))
        del tensors
    total = sum(math.prod(shape) * 2 for shape in shapes.values())
    (folder / f"{WAN_SHARD_BASE}.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return total


def _status_kib() -> dict[str, int]:
    with open("/proc/self/status") as status:
        return {
            name: int(value.split()[0])
            for name, value in (line.split(":", 1) for line in status)
            if name in ("RssAnon", "RssFile")
        }


def child(folder: Path, mode: str) -> None:
    """Load once in this process and print the memory peaks as JSON."""
    from skyaudio_cli.model.acceleration import FP8_STORAGE

    dtype, fp8 = MODES[mode]
    peaks = {"RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, value in _status_kib().items():
                peaks[name] = max(peaks[name], value)
            time.sleep(0.005)

    from skyaudio_cli.model.checkpoint import load_transformer

    before = _status_kib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    declare = (
        (lambda m: m.enable_layerwise_casting(storage_dtype=FP8_STORAGE, compute_dtype=dtype))
        if fp8
        else None
    )
    model = load_transformer(folder, device="cpu", dtype=dtype, before_weights=declare)
    seconds = time.monotonic() - started
    # Touch one element per page of every weight, as a forward pass would, without temporaries.
    for parameter in model.parameters():
        flat = parameter.detach().view(-1)
        flat[:: max(1, 4096 // flat.element_size())].float().sum()
    done.set()
    sampler.join()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({
        "mode": mode,
        "load_seconds": round(seconds, 1),
        "model_bytes": model_bytes,
        "baseline_kib": before,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "peak_anon_kib": peaks["RssAnon"],
        "peak_file_kib": peaks["RssFile"],
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=3072, help="model width (release: 5120)")
    parser.add_argument("--ffn", type=int, default=8192, help="FFN width (release: 13824)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/skyaudio_load_bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoint")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return

    started = time.monotonic()
    size = write_checkpoint(args.dir, args.dim, args.ffn)
    print(
        f"checkpoint: {size / GB:.2f} GB bf16 in {args.dir} ({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
    )
    results = []
    try:
        for mode in MODES:
            # Drop this checkpoint's cached pages between modes so each load reads from disk alike.
            subprocess.run(["sync"], check=False)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(args.dir), mode],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["checkpoint_bytes"] = size
            results.append(result)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)

    columns = ["mode", "checkpoint GB", "model in RAM GB", "peak RSS / ckpt", "peak anon / ckpt"]
    print("| " + " | ".join([*columns, "peak file-backed / ckpt", "load s"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ratio = lambda kib: f"{kib * 1024 / size:.2f}"  # noqa: E731
        print(
            f"| {r['mode']} | {size / GB:.2f} | {r['model_bytes'] / GB:.2f} | {ratio(r['peak_rss_kib'])} |"
            f" {ratio(r['peak_anon_kib'])} | {ratio(r['peak_file_kib'])} | {r['load_seconds']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
