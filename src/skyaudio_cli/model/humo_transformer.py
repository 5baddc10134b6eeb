"""HuMo's audio-conditioned Wan2.1 T2V DiT (humo-17b, humo-1.7b) in our transformer family.

Same backbone code as the a2v model (diffusers' Wan blocks, fp64 time sinusoid, fp32 norms and
modulation); what differs is the audio path, per HuMo's release:

- the audio input is already grouped per latent frame by the pipeline (8 Whisper frames x 5 layer
  groups x 1280, ``conditioning.audio_windows.humo_latent_windows``), so one MLP serves every latent
  frame: 51200 -> 512 -> 512 -> 16 tokens x 1536, then LayerNorm;
- the per-block audio attention has separate q/k/v/o projections with RMS norms on q and k (the
  a2v one has stacked k/v and no norms). Queries of latent frame f see only frame f's 16 tokens.

No CLIP tokens: the reference image enters as latents (see ``pipeline.humo``).
"""

import torch
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from .audio_attention import AudioAttnProcessor, FrameAudioAttention
from .transformer import AudioWanTransformer3DModel, AudioWanTransformerBlock

# The release's config for both sizes: 8 frames per latent window, 5 Whisper layer groups x 1280.
HUMO_AUDIO_CONFIG = {
    "audio_window": 8,
    "audio_feature_dim": 5 * 1280,
    "audio_hidden_dim": 512,
    "audio_tokens": 16,
    "audio_token_dim": 1536,
}


class HumoAudioProjection(nn.Module):
    """Per-latent windows ``[B, F_lat, window, L*C]`` (or ``[..., L, C]``) -> ``[B, F_lat, tokens, dim]``."""

    def __init__(self, window: int, feature_dim: int, hidden_dim: int, tokens: int, token_dim: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.token_dim = token_dim
        self.proj1 = nn.Linear(window * feature_dim, hidden_dim)
        self.proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.proj3 = nn.Linear(hidden_dim, tokens * token_dim)
        self.norm = FP32LayerNorm(token_dim)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.proj1(windows.flatten(2).to(self.proj1.weight.dtype)))
        hidden = torch.relu(self.proj2(hidden))
        return self.norm(self.proj3(hidden).unflatten(-1, (self.tokens, self.token_dim)))


class HumoAudioAttention(FrameAudioAttention):
    """HuMo's audio attention: q/k/v/o with biases, RMS norm over the whole q and k (all heads)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        audio_token_dim: int,
        eps: float = 1e-6,
        processor: AudioAttnProcessor | None = None,
    ) -> None:
        super().__init__(heads, processor)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(audio_token_dim, dim)
        self.v = nn.Linear(audio_token_dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)

    def project_query(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return _rms_norm_fp32(self.norm_q, self.q(hidden_states))

    def project_key_value(self, audio_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _rms_norm_fp32(self.norm_k, self.k(audio_tokens)), self.v(audio_tokens)

    def project_output(self, attended: torch.Tensor) -> torch.Tensor:
        return self.o(attended)


def _rms_norm_fp32(norm: nn.RMSNorm, x: torch.Tensor) -> torch.Tensor:
    # The release normalises in fp32 and rounds back before the gain (WanRMSNorm).
    normalised = torch.nn.functional.rms_norm(x.float(), norm.normalized_shape, eps=norm.eps)
    return normalised.type_as(x) * norm.weight


class HumoTransformerBlock(AudioWanTransformerBlock):
    audio_attention_class = HumoAudioAttention


class HumoTransformer3DModel(AudioWanTransformer3DModel):
    """HuMo DiT. ``forward`` as the a2v model, except ``audio_embeds`` is per LATENT frame:
    ``[B, F_lat, window, layers, channels]`` (or with layers*channels flattened); None = silence.

    Build it with ``HUMO_AUDIO_CONFIG`` and the Wan2.1 T2V backbone sizes (``image_dim=None``,
    ``added_kv_proj_dim=None``); ``model.checkpoint.load_transformer`` infers all of it from the release.
    """

    _no_split_modules = ["HumoTransformerBlock"]
    _repeated_blocks = ["HumoTransformerBlock"]
    block_class = HumoTransformerBlock

    def build_audio_projection(self) -> nn.Module:
        c = self.config
        return HumoAudioProjection(
            c.audio_window, c.audio_feature_dim, c.audio_hidden_dim, c.audio_tokens, c.audio_token_dim
        )

    def _silent_audio(self, batch: int, latent_frames: int, like: torch.Tensor) -> torch.Tensor:
        config = self.config
        return like.new_zeros(batch, latent_frames, config.audio_window, config.audio_feature_dim)


TransformerBlockRegistry.register(
    model_class=HumoTransformerBlock,
    metadata=TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None),
)
