"""The training objective: flow matching on the Wan path with the family's timestep shift, weighted
per latent by the facial-mask map 1 + w_face * face + w_lip * lip.

Path and target are the sampler's (sampling/flow_euler.py): x_t = (1 - s) x_0 + s * noise, velocity
v = noise - x_0, model timestep 1000 * s. Training draws s = shift * u / (1 + (shift - 1) * u) with u
uniform, the same shift map the sampler spaces its steps with, so training sees the noise levels
inference spends its steps on.
"""

from collections.abc import Sequence

import torch

from skyaudio_cli.sampling.flow_euler import NUM_TRAIN_TIMESTEPS


def shifted_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * u / (1.0 + (shift - 1.0) * u)


def noised(clean: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.reshape(-1, *([1] * (clean.dim() - 1)))
    return (1.0 - s) * clean + s * noise


def timestep_of(sigma: torch.Tensor) -> torch.Tensor:
    return sigma * NUM_TRAIN_TIMESTEPS


def weight_map(face: torch.Tensor, lip: torch.Tensor, w_face: float, w_lip: float) -> torch.Tensor:
    """[B, F, H, W] latent masks -> the per-latent loss weight 1 + w_face * face + w_lip * lip."""
    return 1.0 + w_face * face + w_lip * lip


def pick_mask_weights(
    choices: Sequence[tuple[float, float, float]], fixed: tuple[float, float], generator: torch.Generator
) -> tuple[float, float]:
    """(w_face, w_lip) of this step: one of the (probability, face, lip) choices, or the fixed pair."""
    if not choices:
        return fixed
    draw = float(torch.rand((), generator=generator))
    total = 0.0
    for probability, face, lip in choices:
        total += probability
        if draw < total:
            return face, lip
    return choices[-1][1], choices[-1][2]


def weighted_flow_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean over batch, channels, frames and pixels of weights * (prediction - target)^2; `weights`
    [B, F, H, W] applies to every channel. A weight of 0 (masked-edit context, motion frames) takes a
    latent out of the loss."""
    squared = (prediction.float() - target.float()) ** 2
    return (weights[:, None] * squared).mean()
