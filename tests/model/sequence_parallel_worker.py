"""Run under torchrun: load the tiny DiT through the production path (which turns on Ulysses sequence
parallel when WORLD_SIZE > 1) and save rank 0's output of one forward.

    torchrun --nproc-per-node 2 sequence_parallel_worker.py CHECKPOINT INPUTS.pt OUTPUT.pt
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from skyaudio_cli.model.acceleration import Acceleration, load_accelerated_transformer
from skyaudio_cli.model.parallel import is_main_process


def main(checkpoint: str, inputs_path: str, output_path: str) -> None:
    model = load_accelerated_transformer(
        [Path(checkpoint)],
        device=torch.device("cpu"),
        dtype=torch.float32,
        attention="native",
        acceleration=Acceleration(),
        num_steps=4,
    )
    assert dist.is_initialized() and dist.get_world_size() > 1
    inputs = torch.load(inputs_path, weights_only=True)
    with torch.no_grad():
        output = model(**inputs, return_dict=False)[0]
    if is_main_process():
        torch.save(output, output_path)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
