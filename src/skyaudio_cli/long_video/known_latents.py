"""Latents held fixed while sampling: motion frames of long video, the kept region of a lip-sync edit.

After every sampler step (and once before the first), latents where `mask` is 1 are replaced by
`clean` - either as is, or noised to the step's timestep so they sit on the same flow path as
the rest (`noised=True`). skyreels-v3-a2v re-imposes its motion latents noised, infinitetalk
clean; an edit keeps the source video outside the face noised, so the model blends into it.
"""

from dataclasses import dataclass

import torch

from skyaudio_cli.sampling.flow_euler import add_noise


@dataclass
class KnownLatents:
    clean: torch.Tensor  # [B, C, T, h, w], the values to impose
    mask: torch.Tensor  # broadcastable to `clean`: 1 where imposed, 0 where sampled (soft in between)
    noised: bool
    generator: torch.Generator | None = None  # fresh noise per step, drawn on the CPU (seeded runs repeat)

    @classmethod
    def leading_frames(
        cls, clean: torch.Tensor, total_frames: int, *, noised: bool, generator: torch.Generator | None = None
    ) -> "KnownLatents":
        """`clean` [B, C, n, h, w] imposed on the first n of `total_frames` latent frames."""
        batch, channels, frames, height, width = clean.shape
        full = clean.new_zeros(batch, channels, total_frames, height, width)
        full[:, :, :frames] = clean
        mask = clean.new_zeros(1, 1, total_frames, 1, 1)
        mask[:, :, :frames] = 1.0
        return cls(full, mask, noised, generator)

    def impose(self, latents: torch.Tensor, t: float) -> torch.Tensor:
        target = self.clean
        if self.noised:
            noise = torch.randn(self.clean.shape, generator=self.generator, dtype=torch.float32)
            target = add_noise(self.clean, noise.to(self.clean.device), t)
        mask = self.mask.to(latents.device, latents.dtype)
        return latents * (1.0 - mask) + target.to(latents.dtype) * mask
