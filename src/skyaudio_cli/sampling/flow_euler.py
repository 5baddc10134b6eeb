"""Flow-matching Euler sampler with timestep shift, as the Wan2.1 family samples.

Each function is small and pure so the schedule can be pinned against the released numbers
(4 steps, shift 11 -> [1000, 956.584, 846.544, 10.891, 0]) without running a model.
"""

from collections.abc import Callable

import torch

NUM_TRAIN_TIMESTEPS = 1000


def shifted_timesteps(num_steps: int, shift: float) -> torch.Tensor:
    """Timesteps in [0, 1000] for `num_steps` Euler steps, with the terminal 0 appended.

    The released samplers space sigmas linearly from 1 down to 1/1000 (not to 0) before shifting,
    which is why a plain `linspace(1, 0, N)` does not reproduce their schedule.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    sigmas = torch.linspace(1.0, 1.0 / NUM_TRAIN_TIMESTEPS, num_steps, dtype=torch.float64)
    shifted = shift * sigmas / (1.0 + (shift - 1.0) * sigmas)
    return torch.cat([shifted, shifted.new_zeros(1)]) * NUM_TRAIN_TIMESTEPS


def euler_step(latents: torch.Tensor, velocity: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Euler step of the flow ODE x_t = (1 - t) x_0 + t * noise, with v = noise - x_0."""
    step = (t_next - t) / NUM_TRAIN_TIMESTEPS
    return (latents.float() + step * velocity.float()).to(latents.dtype)


def add_noise(clean: torch.Tensor, noise: torch.Tensor, t: float) -> torch.Tensor:
    """Noise clean latents to timestep t on the flow path (used to re-impose known latents)."""
    sigma = t / NUM_TRAIN_TIMESTEPS
    return ((1.0 - sigma) * clean.float() + sigma * noise.float()).to(clean.dtype)


def sample_euler(
    velocity_fn: Callable[[torch.Tensor, float], torch.Tensor],
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    *,
    after_step: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Integrate from timesteps[0] to timesteps[-1] with Euler steps.

    `velocity_fn(latents, t)` returns the guided velocity; `after_step(latents, t_next)` may
    overwrite parts of the latents (motion frames, edit masks) after every step.
    """
    for i in range(len(timesteps) - 1):
        t, t_next = float(timesteps[i]), float(timesteps[i + 1])
        latents = euler_step(latents, velocity_fn(latents, t), t, t_next)
        if after_step is not None:
            latents = after_step(latents, t_next)
        if on_step is not None:
            on_step(i)
    return latents
