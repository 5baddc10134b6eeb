import math

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from skyaudio_cli.sampling.flow_euler import add_noise, euler_step, sample_euler, shifted_timesteps


def test_distilled_schedule_matches_release():
    # 4 steps, shift 11: the numbers the released skyreels-v3-a2v sampler uses.
    expected = [1000.0, 956.584, 846.544, 10.891, 0.0]
    assert shifted_timesteps(4, 11.0).tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(("steps", "shift"), [(4, 11.0), (40, 7.0), (50, 5.0), (1, 3.0)])
def test_schedule_matches_diffusers_flow_match(steps, shift):
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.001, steps))
    ours = shifted_timesteps(steps, shift)
    assert torch.allclose(ours[:-1].float(), scheduler.timesteps.float(), atol=1e-3)
    assert ours[-1] == 0.0


def test_formula_shift_one_is_linear():
    ts = shifted_timesteps(5, 1.0)
    assert torch.allclose(ts[:-1], torch.linspace(1000.0, 1.0, 5, dtype=torch.float64))


def test_euler_step_is_exact_on_straight_path():
    # On the straight flow path the velocity is constant, so Euler is exact from any t.
    generator = torch.Generator().manual_seed(0)
    clean = torch.randn(2, 3, generator=generator)
    noise = torch.randn(2, 3, generator=generator)
    velocity = noise - clean
    ts = shifted_timesteps(4, 11.0)
    x = sample_euler(lambda latents, t: velocity, noise.clone(), ts)
    assert torch.allclose(x, clean, atol=1e-6)
    mid = add_noise(clean, noise, 846.544)
    assert torch.allclose(euler_step(mid, velocity, 846.544, 0.0), clean, atol=1e-6)


def test_after_step_sees_next_timestep_and_can_overwrite():
    seen = []

    def after(latents, t_next):
        seen.append(t_next)
        return torch.zeros_like(latents)

    out = sample_euler(
        lambda x, t: torch.ones_like(x), torch.ones(1), shifted_timesteps(3, 2.0), after_step=after
    )
    assert out.item() == 0.0
    assert seen[-1] == 0.0 and len(seen) == 3 and math.isclose(seen[0], float(shifted_timesteps(3, 2.0)[1]))
