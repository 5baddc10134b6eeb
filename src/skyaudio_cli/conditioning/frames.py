"""Image-to-video condition tensors, as the Wan2.1 I2V family expects them."""

import numpy as np
import torch
import torch.nn.functional as F

from skyaudio_cli.conditioning.vae import TEMPORAL_STRIDE


def to_signed(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixel values (any layout) -> float32 in [-1, 1], as x / 127.5 - 1 (that op order: the
    algebraically equal (x - 127.5) / 127.5 rounds differently in the last bit)."""
    return pixels.float() / 127.5 - 1.0


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[n, 3, H, W] in [-1, 1] -> [n, H, W, 3] uint8 (clamped, rounded)."""
    pixels = ((frames.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def latent_frame_count(num_frames: int) -> int:
    if num_frames < 1 or (num_frames - 1) % TEMPORAL_STRIDE:
        raise ValueError(f"the VAE needs 1 + 4k frames, got {num_frames}")
    return (num_frames - 1) // TEMPORAL_STRIDE + 1


def padded_frame_count(num_frames: int) -> int:
    """Smallest 1 + 4k frame count that holds `num_frames` frames."""
    return 1 + TEMPORAL_STRIDE * -(-(num_frames - 1) // TEMPORAL_STRIDE)


def known_frames_mask(known: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The 4-channel mask telling the model which pixel frames are given.

    `known` is a bool per pixel frame (1 + 4k of them). Frame 0 is repeated 4 times so every
    latent frame owns exactly 4 entries; latent frame f's channel c is pixel-mask entry 4f + c
    (frame-major), which is what the released models were trained on.
    Returns [1, 4, latent_frames, height, width].
    """
    latent_frames = latent_frame_count(known.numel())
    per_frame = torch.cat([known[:1].repeat(TEMPORAL_STRIDE), known[1:]]).float()
    mask = per_frame.view(latent_frames, TEMPORAL_STRIDE).transpose(0, 1)
    return mask[None, :, :, None, None].expand(1, TEMPORAL_STRIDE, latent_frames, height, width).contiguous()


def reference_video(reference: torch.Tensor, num_frames: int) -> torch.Tensor:
    """[1, 3, num_frames, H, W]: the reference frame followed by zero (mid-grey) frames."""
    video = reference.new_zeros(1, reference.shape[1], num_frames, *reference.shape[-2:])
    video[:, :, 0] = reference[:, :, 0]
    return video


def frames_to_tensor(frames: np.ndarray, width: int, height: int) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> [n, 3, height, width] in [-1, 1], plain-resized when the size differs.

    Plain resize, not crop: `extend` resizes its continuation back to the source size, and the round
    trip must keep the picture's geometry so the cut between source and continuation does not jump.
    """
    pixels = to_signed(torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2))
    if pixels.shape[-2:] != (height, width):
        pixels = F.interpolate(pixels, size=(height, width), mode="bicubic", antialias=True).clamp(-1, 1)
    return pixels
