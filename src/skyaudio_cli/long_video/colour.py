"""Per-frame colour matching to the reference portrait in CIE Lab (the fix for long-video colour drift).

Both releases (skyreels-v3-a2v always, infinitetalk at its default strength 1.0) correct every
generated window before its tail becomes the next window's motion frames: each frame's Lab
channels are shifted and scaled so their mean and standard deviation (over the frame's pixels)
equal the reference image's. Without it, small colour errors feed back through the motion frames
and compound over minutes. Frames are independent, so a window can be corrected frame by frame as
it is decoded.

sRGB (D65) <-> XYZ <-> Lab with the standard constants (as kornia and scikit-image use).
"""

from dataclasses import dataclass

import torch

_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_LAB_EPSILON = 0.008856  # (6/29)^3: below it the cube root is replaced by a line
_LAB_SLOPE = 7.787
_LAB_OFFSET = 4.0 / 29.0
# A flat (single-colour) frame has zero spread; it is shifted, not scaled by infinity.
_MIN_STD = 1e-6


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] sRGB in [0, 1] -> Lab (L in [0, 100])."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,...jhw->...ihw", _XYZ_FROM_RGB.to(rgb), linear)
    t = xyz / _D65_WHITE.to(rgb)[:, None, None]
    f = torch.where(t > _LAB_EPSILON, t.clamp_min(_LAB_EPSILON) ** (1 / 3), _LAB_SLOPE * t + _LAB_OFFSET)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_lab`; colours outside the sRGB gamut are clipped to [0, 1]."""
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    t = torch.where(f > _LAB_EPSILON ** (1 / 3), f**3, (f - _LAB_OFFSET) / _LAB_SLOPE)
    xyz = t * _D65_WHITE.to(lab)[:, None, None]
    linear = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_XYZ_FROM_RGB).to(lab), xyz).clamp(0.0, 1.0)
    return torch.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)


@dataclass(frozen=True)
class LabStats:
    mean: torch.Tensor  # [3, 1]
    std: torch.Tensor  # [3, 1]

    @classmethod
    def of(cls, image: torch.Tensor, where: torch.Tensor | None = None) -> "LabStats":
        """Statistics of one [3, H, W] image in [-1, 1], over the pixels `where` ([H, W] bool) if given."""
        lab = _lab_pixels(image)
        return _stats(lab if where is None else lab[:, where.flatten()])


def match_colours(frames: torch.Tensor, reference: LabStats) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> the same frames with each one's Lab mean/std set to the reference's."""
    lab = _lab_pixels(frames)
    return _transferred(lab, _stats(lab), reference, frames.shape)


def transfer_colours(image: torch.Tensor, measured: LabStats, target: LabStats) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] moved in Lab from the `measured` to the `target` statistics.

    For a lip-sync edit, both are measured around the regenerated mouth (the generated crop and
    the source crop there), so the new mouth takes the source's light of that very frame.
    """
    return _transferred(_lab_pixels(image), measured, target, image.shape)


def _stats(lab: torch.Tensor) -> LabStats:
    std, mean = torch.std_mean(lab, dim=-1, keepdim=True, correction=0)
    return LabStats(mean=mean, std=std)


def _transferred(lab: torch.Tensor, measured: LabStats, target: LabStats, shape: torch.Size) -> torch.Tensor:
    """Lab pixels moved from the `measured` to the `target` statistics, back as RGB in [-1, 1]."""
    scale = target.std.to(lab) / measured.std.to(lab).clamp_min(_MIN_STD)
    matched = (lab - measured.mean.to(lab)) * scale + target.mean.to(lab)
    return lab_to_rgb(matched.view(shape).float()) * 2.0 - 1.0


def _lab_pixels(images: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [-1, 1] -> Lab [..., 3, H*W] in float32."""
    lab = rgb_to_lab((images.float() + 1.0) * 0.5)
    return lab.flatten(-2)
