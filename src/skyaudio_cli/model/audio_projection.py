"""Audio features -> per-latent-frame audio tokens (the AudioProjModel of the a2v / InfiniteTalk DiT).

The audio encoder gives one window of features per VIDEO frame; the DiT works on LATENT frames
(the VAE folds ``vae_scale`` video frames into one latent frame, except the first which stands
alone). This module regroups the windows per latent frame exactly as the released model was
trained, then projects each group to a fixed number of tokens.
"""

import torch
from diffusers.models.normalization import FP32LayerNorm
from torch import nn


def group_audio_windows(audio_windows: torch.Tensor, vae_scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split per-video-frame windows into the inputs of ``proj1`` (latent 0) and ``proj1_vf`` (the rest).

    ``audio_windows`` is ``[B, T_video, W, L, C]`` with ``T_video = 1 + vae_scale * (F_lat - 1)``.
    Latent frame 0 keeps its whole window. Latent frame k >= 1 covers video frames
    ``vae_scale*(k-1)+1 .. vae_scale*k``; from them it takes the first frame's window up to and
    including the centre, the centre vector of every inner frame, and the last frame's window from
    the centre on: ``W + vae_scale - 1`` vectors spanning the latent frame's audio without repeats.

    Returns ``[B, 1, W*L*C]`` and ``[B, F_lat-1, (W+vae_scale-1)*L*C]``, flattened in
    (window, layer, channel) order as the projection weights expect.
    """
    batch, video_frames, window = audio_windows.shape[:3]
    if (video_frames - 1) % vae_scale != 0:
        raise ValueError(f"audio covers {video_frames} video frames; expected 1 + {vae_scale}*k")
    centre = window // 2
    first = audio_windows[:, :1]
    later = audio_windows[:, 1:].unflatten(1, (-1, vae_scale))  # [B, F_lat-1, vae_scale, W, L, C]
    later = torch.cat(
        [
            later[:, :, 0, : centre + 1],
            later[:, :, 1:-1, centre],
            later[:, :, -1, centre:],
        ],
        dim=2,
    )
    return first.flatten(2), later.flatten(2)


class AudioProjModel(nn.Module):
    """Two-branch MLP from grouped audio windows to ``tokens`` tokens of ``token_dim`` per latent frame.

    Attribute names follow the original release (``proj1``, ``proj1_vf``, ``proj2``, ``proj3``,
    ``norm``) so its state-dict keys load without renaming.
    """

    def __init__(
        self,
        window: int,
        vae_scale: int,
        feature_dim: int,
        hidden_dim: int,
        tokens: int,
        token_dim: int,
    ) -> None:
        super().__init__()
        self.vae_scale = vae_scale
        self.tokens = tokens
        self.token_dim = token_dim
        self.proj1 = nn.Linear(window * feature_dim, hidden_dim)
        self.proj1_vf = nn.Linear((window + vae_scale - 1) * feature_dim, hidden_dim)
        self.proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.proj3 = nn.Linear(hidden_dim, tokens * token_dim)
        # The original normalises the tokens under an fp32 autocast region.
        self.norm = FP32LayerNorm(token_dim)

    def forward(self, audio_windows: torch.Tensor) -> torch.Tensor:
        """``[B, T_video, W, L, C]`` per-video-frame windows -> ``[B, F_lat, tokens, token_dim]``."""
        first, later = group_audio_windows(audio_windows, self.vae_scale)
        dtype = self.proj1.weight.dtype
        hidden = torch.cat(
            [torch.relu(self.proj1(first.to(dtype))), torch.relu(self.proj1_vf(later.to(dtype)))], dim=1
        )
        hidden = torch.relu(self.proj2(hidden))
        tokens = self.proj3(hidden).unflatten(-1, (self.tokens, self.token_dim))
        return self.norm(tokens)
