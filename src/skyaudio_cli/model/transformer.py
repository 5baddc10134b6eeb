"""Audio-conditioned Wan2.1 DiT (skyreels-v3-a2v / InfiniteTalk layout) as a diffusers model.

Subclasses diffusers' Wan blocks and model so attention backends, cache hooks, offloading and LoRA
keep working; adds the per-block audio cross-attention and the audio projection, and reproduces the
original release's precision choices (fp64 time sinusoid, RoPE angles in fp64, fp32 norms,
modulation and head).
"""

from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel, WanTransformerBlock
from diffusers.utils import apply_lora_scale
from torch import nn

from .audio_attention import AudioCrossAttention, FrameAudioAttention
from .audio_projection import AudioProjModel

# Wan's I2V cross-attention finds the image tokens as "everything before the last 512": text must be
# padded to exactly this many tokens (the original pads umT5 output to text_len=512 as well).
TEXT_TOKENS = 512


class Float64SinusoidalTimesteps(nn.Module):
    """``[cos, sin]`` timestep features computed in float64 as the original does (diffusers' stock
    ``Timesteps`` works in float32, which is ~1e-4 off at t~1000), returned as float32."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half = self.num_channels // 2
        position = timesteps.to(torch.float64)
        frequencies = torch.pow(
            10000.0, -torch.arange(half, dtype=torch.float64, device=position.device) / half
        )
        angles = torch.outer(position, frequencies)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


class AudioWanTransformerBlock(WanTransformerBlock):
    """Wan block with the audio cross-attention between the text/image cross-attention and the FFN.

    Families differ only in the attention module itself (``audio_attention_class``): both apply it as
    ``x + attn(LayerNorm_affine(x), audio_tokens)``.
    """

    audio_attention_class: type[FrameAudioAttention] = AudioCrossAttention

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: str = "rms_norm_across_heads",
        cross_attn_norm: bool = False,
        eps: float = 1e-6,
        added_kv_proj_dim: int | None = None,
        audio_token_dim: int = 768,
    ) -> None:
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
        self.norm_x = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.audio_cross_attn = self.audio_attention_class(dim, num_heads, audio_token_dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        audio_tokens: torch.Tensor,
        tokens_per_frame: int,
    ) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

        norm_hidden_states = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(
            hidden_states
        )
        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        norm_hidden_states = self.norm2(hidden_states.float()).type_as(hidden_states)
        hidden_states = hidden_states + self.attn2(norm_hidden_states, encoder_hidden_states, None, None)

        # Audio: plain residual, no gate or modulation (as released).
        hidden_states = hidden_states + self.audio_cross_attn(
            self.norm_x(hidden_states), audio_tokens, tokens_per_frame
        )

        norm_hidden_states = (self.norm3(hidden_states.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(
            hidden_states
        )
        ff_output = self.ffn(norm_hidden_states)
        return (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)


class AudioWanTransformer3DModel(WanTransformer3DModel):
    """Wan2.1 I2V DiT + audio conditioning; takes per-video-frame audio windows in ``forward``.

    Defaults are the 14B release (dim 5120 = 40 x 128, 40 layers, 36 input channels, CLIP ViT-H
    image tokens, wav2vec2-base features of 12 layers x 768).
    """

    _no_split_modules = ["AudioWanTransformerBlock"]
    _repeated_blocks = ["AudioWanTransformerBlock"]
    block_class: type[AudioWanTransformerBlock] = AudioWanTransformerBlock
    # Beyond the stock list: the audio input norm, and the time projection / output head, which the
    # original computes in fp32 (its modulation vectors must not be rounded to bf16).
    _keep_in_fp32_modules = [*WanTransformer3DModel._keep_in_fp32_modules, "norm_x", "time_proj", "proj_out"]
    # FP8 storage leaves the audio projection alone too: it is small and feeds every block.
    _skip_layerwise_casting_patterns = [*WanTransformer3DModel._skip_layerwise_casting_patterns, "audio_proj"]
    # Sequence parallel: the video tokens are split at the first block and gathered after the head;
    # text/image context and audio tokens stay whole on every rank (the audio attention finds each
    # local token's frame from its global index).
    _cp_plan = {
        "rope": {
            0: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
            1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
        },
        "blocks.0": {"hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = 1280,
        added_kv_proj_dim: int | None = 5120,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        audio_window: int = 5,
        audio_vae_scale: int = 4,
        audio_feature_dim: int = 12 * 768,
        audio_hidden_dim: int = 512,
        audio_tokens: int = 32,
        audio_token_dim: int = 768,
    ) -> None:
        # The parent builds everything but the blocks (num_layers=0): ours carry the audio path.
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=0,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        # The parent's own @register_to_config ran after ours and recorded num_layers=0.
        self.register_to_config(num_layers=num_layers)
        inner_dim = num_attention_heads * attention_head_dim
        self.condition_embedder.timesteps_proj = Float64SinusoidalTimesteps(freq_dim)
        self.blocks = nn.ModuleList(
            [
                self.block_class(
                    inner_dim,
                    ffn_dim,
                    num_attention_heads,
                    qk_norm,
                    cross_attn_norm,
                    eps,
                    added_kv_proj_dim,
                    audio_token_dim,
                )
                for _ in range(num_layers)
            ]
        )
        self.audio_proj = self.build_audio_projection()

    def build_audio_projection(self) -> nn.Module:
        """Per-video-frame audio windows -> per-latent-frame tokens (the a2v two-branch MLP)."""
        c = self.config
        return AudioProjModel(
            c.audio_window, c.audio_vae_scale, c.audio_feature_dim, c.audio_hidden_dim, c.audio_tokens,
            c.audio_token_dim,
        )  # fmt: skip

    def _embed_conditions(
        self,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Time embedding and 6-way modulation in fp32 (the parent casts them to the text dtype),
        then text (+ image tokens in front) context."""
        embedder = self.condition_embedder
        sinusoid = embedder.timesteps_proj(timestep)
        temb = embedder.time_embedder(sinusoid.to(embedder.time_embedder.linear_1.weight.dtype)).float()
        timestep_proj = embedder.time_proj(embedder.act_fn(temb).to(embedder.time_proj.weight.dtype)).float()
        context = embedder.text_embedder(encoder_hidden_states)
        if encoder_hidden_states_image is not None:
            image_context = embedder.image_embedder(encoder_hidden_states_image)
            context = torch.cat([image_context.to(context.dtype), context], dim=1)
        return temb, timestep_proj.unflatten(1, (6, -1)), context

    def _silent_audio(self, batch: int, latent_frames: int, like: torch.Tensor) -> torch.Tensor:
        """All-zero features (the unconditional audio of audio CFG) for ``latent_frames`` latents."""
        config = self.config
        video_frames = 1 + config.audio_vae_scale * (latent_frames - 1)
        return like.new_zeros(batch, video_frames, config.audio_window, config.audio_feature_dim)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """Predict the flow velocity, float32 ``[B, out_channels, F, H, W]`` like the original.

        Args:
            hidden_states: ``[B, in_channels, F_lat, H_lat, W_lat]`` (noise + mask + condition latents).
            timestep: ``[B]`` (or a scalar) in [0, 1000].
            encoder_hidden_states: text embeddings ``[B, 512, text_dim]``, zero-padded to 512 tokens.
            encoder_hidden_states_image: CLIP tokens ``[B, 257, image_dim]`` or None.
            audio_embeds: per-video-frame windows ``[B, 1 + vae_scale*(F_lat-1), window, layers, channels]``
                (layers*channels = ``audio_feature_dim``); None means silence (zero features).
            return_dict / attention_kwargs: as in diffusers (attention_kwargs carries the LoRA scale).
        """
        batch, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        tokens_per_frame = (height // p_h) * (width // p_w)
        if encoder_hidden_states_image is not None and encoder_hidden_states.shape[1] != TEXT_TOKENS:
            raise ValueError(
                f"text embeddings have {encoder_hidden_states.shape[1]} tokens; pad them to {TEXT_TOKENS}"
            )

        rotary_emb = self.rope(hidden_states)
        hidden_states = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()

        timestep = timestep.reshape(-1).expand(batch)
        temb, timestep_proj, context = self._embed_conditions(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )

        if audio_embeds is None:
            audio_embeds = self._silent_audio(batch, num_frames // p_t, hidden_states)
        audio_tokens = self.audio_proj(audio_embeds.flatten(3)).to(hidden_states.dtype)

        block_inputs = (context, timestep_proj, rotary_emb, audio_tokens, tokens_per_frame)
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            for block in self.blocks:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states, *block_inputs)
        else:
            for block in self.blocks:
                hidden_states = block(hidden_states, *block_inputs)

        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        hidden_states = self.norm_out(hidden_states.float()) * (
            1 + scale.to(hidden_states.device)
        ) + shift.to(hidden_states.device)
        hidden_states = self.proj_out(hidden_states.to(self.proj_out.weight.dtype)).float()

        hidden_states = hidden_states.reshape(
            batch, num_frames // p_t, height // p_h, width // p_w, p_t, p_h, p_w, -1
        )
        output = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


TransformerBlockRegistry.register(
    model_class=AudioWanTransformerBlock,
    metadata=TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None),
)
