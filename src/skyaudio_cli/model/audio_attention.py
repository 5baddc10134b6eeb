"""Per-latent-frame audio cross-attention (``audio_cross_attn`` of the a2v / InfiniteTalk blocks).

The video tokens of latent frame f attend only to frame f's audio tokens. Instead of a block mask
(which xformers mis-handles in 4-D and which wastes compute), the tokens are regrouped so every
latent frame is its own attention batch; any diffusers attention backend then applies unchanged.
"""

import math

import torch
import torch.distributed as dist
from diffusers.models._modeling_parallel import ParallelConfig
from diffusers.models.attention import AttentionModuleMixin
from diffusers.models.attention_dispatch import dispatch_attention_fn
from torch import nn
from torch.nn import functional as F


def _local_token_offset(parallel_config: ParallelConfig | None, total_tokens: int) -> int | None:
    """Index of this rank's first video token when context parallelism has split the sequence, else None.

    Mirrors the splitter diffusers' context-parallel hooks apply to the block input (``chunk``, or
    ``tensor_split`` in the *_anything modes), so tokens can be mapped back to their latent frame.
    """
    cp_config = parallel_config.context_parallel_config if parallel_config is not None else None
    if cp_config is None or cp_config._flattened_mesh is None:
        return None
    mesh = cp_config._flattened_mesh
    rank = dist.get_rank(mesh.get_group())
    positions = torch.arange(total_tokens)
    if cp_config.ulysses_anything or cp_config.ring_anything:
        return int(positions.tensor_split(mesh.size())[rank][0])
    return int(positions.chunk(mesh.size())[rank][0])


def frame_grouped_attention(
    attn: "FrameAudioAttention",
    hidden_states: torch.Tensor,
    audio_tokens: torch.Tensor,
    tokens_per_frame: int,
    token_offset: int = 0,
    backend: str | None = None,
) -> torch.Tensor:
    """Attention of a contiguous run of video tokens, starting at global index ``token_offset``,
    each against the audio tokens of its own latent frame.

    The run is padded out to whole latent frames and frames are folded into the batch, so a rank
    holding an arbitrary slice of the sequence computes exactly its part of the full result.
    """
    batch, local_tokens, _ = hidden_states.shape
    first_frame = token_offset // tokens_per_frame
    lead = token_offset - first_frame * tokens_per_frame
    frames_here = math.ceil((lead + local_tokens) / tokens_per_frame)
    trail = frames_here * tokens_per_frame - lead - local_tokens

    query = attn.project_query(hidden_states)
    if lead or trail:
        query = F.pad(query, (0, 0, lead, trail))
    query = query.reshape(batch * frames_here, tokens_per_frame, attn.heads, -1)

    frame_audio = audio_tokens[:, first_frame : first_frame + frames_here].flatten(0, 1)
    key, value = (
        projected.unflatten(-1, (attn.heads, -1)) for projected in attn.project_key_value(frame_audio)
    )

    out = dispatch_attention_fn(
        query,
        key,
        value,
        attn_mask=None,
        dropout_p=0.0,
        is_causal=False,
        backend=backend,
        parallel_config=None,
    )
    out = out.reshape(batch, frames_here * tokens_per_frame, -1)[:, lead : lead + local_tokens]
    return attn.project_output(out.type_as(hidden_states))


class AudioAttnProcessor:
    """Runs the grouped audio attention through diffusers' backend dispatch.

    ``_attention_backend`` / ``_parallel_config`` are set by ``model.set_attention_backend`` and
    ``model.enable_parallelism``. The parallel config is only used to locate the local tokens: the
    attention itself is local (every rank holds all audio tokens), so it is dispatched without it.
    """

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self,
        attn: "FrameAudioAttention",
        hidden_states: torch.Tensor,
        audio_tokens: torch.Tensor,
        tokens_per_frame: int,
    ) -> torch.Tensor:
        total_tokens = audio_tokens.shape[1] * tokens_per_frame
        offset = _local_token_offset(self._parallel_config, total_tokens)
        if offset is None:
            if hidden_states.shape[1] != total_tokens:
                raise ValueError(
                    f"{hidden_states.shape[1]} video tokens do not match {audio_tokens.shape[1]} audio frames"
                    f" x {tokens_per_frame} tokens per frame"
                )
            offset = 0
        return frame_grouped_attention(
            attn, hidden_states, audio_tokens, tokens_per_frame, offset, self._attention_backend
        )


class FrameAudioAttention(nn.Module, AttentionModuleMixin):
    """Video-token queries against the audio tokens of their own latent frame.

    Subclasses own the projections (their names are the release's state-dict keys) and implement
    ``project_query`` / ``project_key_value`` / ``project_output``; the grouping and the backend
    dispatch are shared. The release layouts keep their tensors as they are, so qkv fusion is not
    offered.
    """

    _default_processor_cls = AudioAttnProcessor
    _available_processors = [AudioAttnProcessor]
    _supports_qkv_fusion = False
    is_cross_attention = True

    def __init__(self, heads: int, processor: AudioAttnProcessor | None) -> None:
        super().__init__()
        self.heads = heads
        self.set_processor(processor if processor is not None else AudioAttnProcessor())

    def project_query(self, hidden_states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project_key_value(self, audio_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def project_output(self, attended: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, hidden_states: torch.Tensor, audio_tokens: torch.Tensor, tokens_per_frame: int
    ) -> torch.Tensor:
        """``hidden_states`` ``[B, L, dim]``, ``audio_tokens`` ``[B, F_lat, N, audio_token_dim]``."""
        return self.processor(self, hidden_states, audio_tokens, tokens_per_frame)


class AudioCrossAttention(FrameAudioAttention):
    """The a2v / InfiniteTalk audio attention: no q/k norm, no gate, biases everywhere.

    ``kv_linear`` stays stacked (first half keys, second half values) exactly as released, so the
    checkpoint tensors load as they are.
    """

    def __init__(
        self, dim: int, heads: int, audio_token_dim: int, processor: AudioAttnProcessor | None = None
    ):
        super().__init__(heads, processor)
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(audio_token_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def project_query(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.q_linear(hidden_states)

    def project_key_value(self, audio_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.kv_linear(audio_tokens).chunk(2, dim=-1)
        return key, value

    def project_output(self, attended: torch.Tensor) -> torch.Tensor:
        return self.proj(attended)
