"""A linear stand-in for the Wan VAE, for long-video tests and benchmarks.

The window loops, planner, audio slicing and transformer run for real around it; the tiny Wan VAE
would only add ~20 s of CPU per 81-frame window (per-op overhead), the same for every window.
"""

import torch


class FastVAE:
    """Linear stand-in for the Wan VAE with its shapes: 1 + 4k frames <-> 1 + k latents, /8 space."""

    z_dim = 16
    spatial_stride = 8
    temporal_stride = 4

    def __init__(self):
        self.to_latent = torch.linspace(-1, 1, 48).view(16, 3)

    def encode(self, video):
        picked = video[:, :, ::4].float()
        pooled = torch.nn.functional.avg_pool3d(picked, (1, 8, 8))
        return torch.einsum("zc,bcthw->bzthw", self.to_latent, pooled)

    def streaming_decoder(self):
        vae = self

        class Decoder:
            started = False

            def decode_next(self, latents):
                rgb = torch.einsum("zc,bzthw->bcthw", vae.to_latent, latents.float()).tanh()
                rgb = rgb.repeat_interleave(8, -1).repeat_interleave(8, -2)
                counts = torch.full((rgb.shape[2],), 4)
                if not self.started:
                    counts[0] = 1
                self.started = True
                return rgb.repeat_interleave(counts.to(rgb.device), dim=2)

        return Decoder()
