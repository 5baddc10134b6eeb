"""Lab colour matching: the conversions against scikit-image, and matching restores the reference."""

import numpy as np
import torch
from skimage import data
from skimage.color import lab2rgb, rgb2lab

from skyaudio_cli.long_video.colour import LabStats, lab_to_rgb, match_colours, rgb_to_lab, transfer_colours


def astronaut(size=64) -> torch.Tensor:
    """[3, H, W] in [0, 1] (float64 so the comparisons are exact to the formulas)."""
    image = torch.from_numpy(data.astronaut()[::8, ::8][:size, :size].copy()).double() / 255.0
    return image.permute(2, 0, 1)


def test_rgb_to_lab_matches_scikit_image():
    image = astronaut()
    ours = rgb_to_lab(image).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2lab(image.permute(1, 2, 0).numpy()), atol=1e-6)


def test_lab_to_rgb_inverts_and_matches_scikit_image():
    image = astronaut()
    lab = rgb_to_lab(image)
    np.testing.assert_allclose(lab_to_rgb(lab).numpy(), image.numpy(), atol=1e-7)
    expected = lab2rgb(lab.permute(1, 2, 0).numpy()).transpose(2, 0, 1)
    np.testing.assert_allclose(lab_to_rgb(lab).numpy(), expected, atol=1e-6)


def test_matching_undoes_a_lab_shift_and_scale():
    reference = astronaut()
    lab = rgb_to_lab(reference)
    # A drifted frame: duller and tinted, still inside the sRGB gamut.
    drifted_lab = lab.clone()
    drifted_lab[0] = lab[0] * 0.8 + 5.0
    drifted_lab[1:] = lab[1:] * 0.7 + torch.tensor([4.0, -3.0], dtype=lab.dtype)[:, None, None]
    drifted = lab_to_rgb(drifted_lab)
    assert (drifted > 0).all() and (drifted < 1).all()

    matched = match_colours(drifted[None] * 2 - 1, LabStats.of(reference * 2 - 1))
    assert matched.shape == (1, 3, *reference.shape[1:])
    np.testing.assert_allclose(((matched[0] + 1) / 2).numpy(), reference.numpy(), atol=2e-4)


def test_each_frame_is_matched_on_its_own_statistics():
    reference = astronaut() * 2 - 1
    stats = LabStats.of(reference)
    frames = torch.stack([reference * 0.5, reference * 0.9 - 0.05])
    matched = match_colours(frames, stats)
    for frame in matched:
        got = LabStats.of(frame)
        # Clipping to the gamut moves the statistics a little; they land near the reference's.
        np.testing.assert_allclose(got.mean.numpy(), stats.mean.numpy(), atol=1.5)
        np.testing.assert_allclose(got.std.numpy(), stats.std.numpy(), rtol=0.05)


def test_flat_frame_does_not_blow_up():
    flat = torch.zeros(1, 3, 8, 8)
    matched = match_colours(flat, LabStats.of(astronaut() * 2 - 1))
    assert torch.isfinite(matched).all() and matched.abs().max() <= 1.0


def test_statistics_of_selected_pixels_and_a_transfer_of_the_whole_image():
    reference = astronaut()
    # The whole frame drifted the same way in Lab, except a patch that differs entirely (a new mouth).
    scale = torch.tensor([0.8, 0.7, 0.7], dtype=torch.float64)[:, None, None]
    offset = torch.tensor([5.0, 4.0, -3.0], dtype=torch.float64)[:, None, None]
    drifted = lab_to_rgb(rgb_to_lab(reference) * scale + offset)
    patch = (slice(40, 56), slice(20, 44))
    drifted[:, patch[0], patch[1]] = torch.tensor([0.9, 0.2, 0.2], dtype=drifted.dtype)[:, None, None]
    where = torch.ones(reference.shape[1:], dtype=torch.bool)
    where[patch] = False

    measured, target = LabStats.of(drifted * 2 - 1, where), LabStats.of(reference * 2 - 1, where)
    matched = (transfer_colours(drifted * 2 - 1, measured, target) + 1) / 2
    # Around the patch the drift is undone (the patch did not bias the statistics) ...
    np.testing.assert_allclose(matched[:, where].numpy(), reference[:, where].numpy(), atol=2e-4)
    # ... and the patch got the same correction, the inverse of the drift.
    undrifted = lab_to_rgb((rgb_to_lab(drifted) - offset) / scale)
    np.testing.assert_allclose(matched[:, ~where].numpy(), undrifted[:, ~where].numpy(), atol=2e-4)
