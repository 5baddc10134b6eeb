"""One video on several GPUs: Ulysses sequence parallel when launched by ``torchrun``.

    torchrun --nproc-per-node 8 -m skyaudio_cli generate --portrait face.png --audio speech.wav -o out.mp4

Every rank loads the same model and runs the same pipeline; inside the DiT, diffusers' context
parallel hooks split the video tokens across ranks and the attention modules exchange heads for
tokens by all-to-all (Ulysses). Our audio attention is local and finds each token's latent frame
from its global index, so any split works. Only rank 0 writes files.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from skyaudio_cli.errors import InputError


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def local_cuda_device() -> torch.device:
    """This process's GPU: ``cuda:LOCAL_RANK`` under torchrun, else the current one."""
    if "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device("cuda")


def _ensure_process_group(device: torch.device) -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


def enable_sequence_parallel(transformer: torch.nn.Module) -> None:
    """Split the transformer's sequence over all ranks (Ulysses degree = world size)."""
    import torch.distributed as dist
    from diffusers import ContextParallelConfig

    device = next(transformer.parameters()).device
    _ensure_process_group(device)
    world = dist.get_world_size()
    heads = transformer.config.num_attention_heads
    if heads % world:
        raise InputError(
            f"torchrun --nproc-per-node {world}: Ulysses parallel splits the {heads} attention heads, "
            f"so use a process count that divides {heads}"
        )
    if device.type == "cuda":
        # ulysses_anything: the token count need not divide by the world size (any resolution bucket).
        config = ContextParallelConfig(ulysses_degree=world, ulysses_anything=True)
        transformer.enable_parallelism(config=config)
        return
    # On CPU (gloo, used for testing): gloo cannot all-gather unequal pieces, so the token count must
    # divide by the world size. diffusers 0.42.1 also picks each rank's device as
    # `rank % accelerator count`, which divides by zero without an accelerator; every rank uses "cpu".
    with _counting_one_accelerator():
        transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))


@contextmanager
def _counting_one_accelerator() -> Iterator[None]:
    """torch.accelerator.device_count() answers 1 inside (see the CPU branch of the caller)."""
    count = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = count
