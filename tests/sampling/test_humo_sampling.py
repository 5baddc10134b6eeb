"""HuMo's UniPC schedule and guidance formulas, pinned numerically against the release's definitions."""

import numpy as np
import pytest
import torch

from skyaudio_cli.sampling.humo_guidance import NULL, TA, TI, TIA, Condition, HumoGuidance, I, T
from skyaudio_cli.sampling.unipc import sample_unipc, unipc_scheduler


def _release_timesteps(steps: int, shift: float) -> np.ndarray:
    """The release's FlowUniPCMultistepScheduler(shift=1).set_timesteps(steps, shift=shift) grid."""
    sigma_max = float(np.float32(0.999))
    sigmas = np.linspace(sigma_max, 0.0, steps + 1)[:-1]
    return (shift * sigmas / (1 + (shift - 1) * sigmas) * 1000).astype(np.int64)


def test_50_steps_shift_5_timesteps_are_the_release_grid():
    scheduler = unipc_scheduler(50, 5.0)
    assert scheduler.timesteps.dtype == torch.int64
    assert scheduler.timesteps.tolist() == _release_timesteps(50, 5.0).tolist()
    assert scheduler.timesteps[:8].tolist() == [999, 995, 991, 987, 982, 978, 973, 968]
    assert scheduler.timesteps[-1].item() == 92
    # the first five steps run the t > 980 guidance formula
    assert int((scheduler.timesteps > 980).sum()) == 5
    assert scheduler.sigmas[-1].item() == 0.0
    assert scheduler.sigmas[0].item() == pytest.approx(5 * 0.999 / (1 + 4 * 0.999), abs=1e-7)


def test_sampler_reaches_the_data_point_of_a_constant_flow():
    """With the exact velocity noise - x0 of a straight flow the solver follows the line to sigma 0.

    It starts at the release's first sigma (just under 1), so it lands on the line's point there
    moved by sigma_0 along -v, i.e. x0 + (1 - sigma_0) * (noise - x0)."""
    generator = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 1, 4, 3, 2, 2, generator=generator)
    calls = []
    result = sample_unipc(lambda x, t: noise - x0, noise.clone(), 6, 5.0, on_step=calls.append)
    sigma_0 = unipc_scheduler(6, 5.0).sigmas[0].item()
    torch.testing.assert_close(result, noise - sigma_0 * (noise - x0), rtol=0, atol=1e-5)
    assert calls == list(range(6))


def _outputs(conditions: tuple[Condition, ...]) -> dict[Condition, torch.Tensor]:
    generator = torch.Generator().manual_seed(len(conditions))
    return {c: torch.randn(2, 3, generator=generator) for c in conditions}


def test_17b_switches_formula_above_timestep_980():
    guidance = HumoGuidance(text=5.0, audio=5.5, with_image=True, switch_timestep=980)
    assert guidance.conditions(981) == (TIA, TI, I)
    assert guidance.conditions(980) == (TIA, TI, NULL)
    early = _outputs((TIA, TI, I))
    torch.testing.assert_close(
        guidance.combine(981, early), early[I] + 5.0 * (early[TI] - early[I]) + 5.5 * (early[TIA] - early[TI])
    )
    late = _outputs((TIA, TI, NULL))
    torch.testing.assert_close(
        guidance.combine(980, late),
        late[NULL] + 3.0 * (late[TI] - late[NULL]) + 5.5 * (late[TIA] - late[TI]),
    )


def test_1_7b_uses_four_passes_with_an_image_scale():
    guidance = HumoGuidance(text=7.0, audio=7.5, image=4.0, with_image=True, switch_timestep=None)
    assert guidance.conditions(999) == guidance.conditions(10) == (TIA, TA, T, NULL)
    o = _outputs((TIA, TA, T, NULL))
    expected = o[NULL] + 7.0 * (o[T] - o[NULL]) + 7.5 * (o[TA] - o[T]) + 4.0 * (o[TIA] - o[TA])
    torch.testing.assert_close(guidance.combine(999, o), expected)


def test_text_only_mode_has_no_image_pass_and_no_switch():
    guidance = HumoGuidance(text=5.0, audio=5.5, with_image=False, switch_timestep=980)
    assert guidance.conditions(999) == guidance.conditions(10) == (TA, T, NULL)
    assert not any(c.image for c in guidance.conditions(999))
    o = _outputs((TA, T, NULL))
    expected = o[NULL] + 5.0 * (o[T] - o[NULL]) + 5.5 * (o[TA] - o[T])
    torch.testing.assert_close(guidance.combine(999, o), expected)
