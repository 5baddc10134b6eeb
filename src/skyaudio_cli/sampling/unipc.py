"""UniPC flow sampler as HuMo samples (its config names euler, its code always runs UniPC).

diffusers' ``UniPCMultistepScheduler`` in flow mode implements the same solver as the release's
``FlowUniPCMultistepScheduler`` (order 2, bh2, predict x0, lower order at the end, final sigma 0);
only the sigma grid differs: the release spaces sigmas from 0.999 (its training grid's largest
sigma, rounded to float32), diffusers from 1. Passing the release's grid explicitly makes the two
agree bit for bit (checked over 50 steps). Timesteps given to the model are the int64 truncation of
``sigma * 1000``, as released, so the guidance switch at t > 980 sees the same values.
"""

from collections.abc import Callable

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler

NUM_TRAIN_TIMESTEPS = 1000
# Largest sigma of the release's 1000-step training grid (1 - 1/1000), as float32 rounds it.
_RELEASE_SIGMA_MAX = float(np.float32(1.0 - 1.0 / NUM_TRAIN_TIMESTEPS))


def unipc_scheduler(num_steps: int, shift: float) -> UniPCMultistepScheduler:
    """A scheduler set to HuMo's ``num_steps``-step grid, shifted by ``shift``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=shift,
    )
    scheduler.set_timesteps(sigmas=np.linspace(_RELEASE_SIGMA_MAX, 0.0, num_steps + 1)[:-1], device="cpu")
    return scheduler


def unipc_timesteps(num_steps: int, shift: float) -> torch.Tensor:
    """The same grid as timesteps in [0, 1000] with the terminal 0, for samplers that step it
    themselves (HuMo's long video runs Euler on it: UniPC's multistep history cannot follow
    windows whose overlaps are blended every step)."""
    return unipc_scheduler(num_steps, shift).sigmas.to(torch.float64) * NUM_TRAIN_TIMESTEPS


def sample_unipc(
    velocity_fn: Callable[[torch.Tensor, float], torch.Tensor],
    latents: torch.Tensor,
    num_steps: int,
    shift: float,
    *,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Integrate float32 ``latents`` from pure noise to t=0; ``velocity_fn(latents, t)`` is the guided
    flow velocity at integer timestep ``t`` in [0, 1000]."""
    scheduler = unipc_scheduler(num_steps, shift)
    for i, t in enumerate(scheduler.timesteps):
        velocity = velocity_fn(latents, float(t))
        latents = scheduler.step(velocity.float(), t, latents.float(), return_dict=False)[0]
        if on_step is not None:
            on_step(i)
    return latents
