"""Wan2.1 video VAE: normalised latents in, pixels out, with a causal cache that can span calls.

AutoencoderKLWan's public encode/decode clear their causal-conv cache on every call, so decoding a
long video window by window would either hold every window's latents or restart the cache (visible
seams). Its encoder/decoder modules accept the cache as an argument, though, so we own one cache per
stream and feed it frame group by frame group exactly as `_encode`/`_decode` do internally: the
result equals one full call, and memory stays constant (the cache keeps at most two frames of
features per causal conv).

Latent normalisation follows the original wrapper (wan/modules/vae.py): scale = [mean, 1/std],
encode `(mu - mean) * (1/std)`, decode `z / (1/std) + mean`; latents are the posterior mean.
"""

import random
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

from skyaudio_cli.conditioning.checkpoint_files import (
    load_pretrained_folder,
    load_pth_state_dict,
    require_matching_tensors,
)
from skyaudio_cli.errors import WeightsError

# Wan2.1's VAE: latent frame 0 holds pixel frame 0, every later one 4 frames (so videos are 1 + 4k
# frames long); 8 x 8 pixels per latent. Planners without a VAE at hand import these.
TEMPORAL_STRIDE = 4
SPATIAL_STRIDE = 8


def load_wan_vae(path: Path, dtype: torch.dtype) -> AutoencoderKLWan:
    """A diffusers folder or the original `Wan2.1_VAE.pth` (converted with diffusers' own key map)."""
    if path.suffix != ".pth":
        model = load_pretrained_folder(
            path, "diffusion_pytorch_model.safetensors",
            meta_model=lambda: AutoencoderKLWan.from_config(AutoencoderKLWan.load_config(str(path))),
            load=lambda: AutoencoderKLWan.from_pretrained(str(path), torch_dtype=dtype),
        )  # fmt: skip
    else:
        state_dict = convert_wan_vae_to_diffusers(load_pth_state_dict(path))
        if "encoder.conv_in.weight" not in state_dict or "post_quant_conv.weight" not in state_dict:
            raise WeightsError(f"{path}: not a Wan2.1 VAE checkpoint")
        # Wan2.1 fixes every other hyper-parameter (and the latent mean/std) at diffusers' defaults.
        with torch.device("meta"):
            model = AutoencoderKLWan(
                base_dim=state_dict["encoder.conv_in.weight"].shape[0],
                z_dim=state_dict["post_quant_conv.weight"].shape[0],
            )
        require_matching_tensors(path, model.state_dict(), state_dict)
        model.load_state_dict(state_dict, strict=True, assign=True)
        model = model.to(dtype)
    if model.config.patch_size is not None or len(model.config.latents_mean) != model.config.z_dim:
        raise WeightsError(f"{path}: not a Wan2.1 VAE (patchified or without per-channel latent stats)")
    return model


class _CausalCache:
    """One causal-conv feature cache for a module (encoder or decoder), carried across calls."""

    def __init__(self, module: torch.nn.Module):
        self.entries: list = [None] * sum(isinstance(m, WanCausalConv3d) for m in module.modules())

    def run(self, module: torch.nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return module(x, feat_cache=self.entries, feat_idx=[0], **kwargs)


class StreamingEncoder:
    """Encode a video in consecutive pieces: first 1 + 4k frames, then multiples of 4."""

    def __init__(self, vae: "VideoVAE"):
        self._vae = vae
        self._cache = _CausalCache(vae.model.encoder)
        self._started = False

    @torch.inference_mode()
    def encode_next(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] in [-1, 1] -> normalised latents [B, z, T_lat, H/8, W/8] of those frames."""
        first = 0 if self._started else 1
        frames = video.shape[2] if video.ndim == 5 else 0
        if frames < 1 or (frames - first) % TEMPORAL_STRIDE:
            expected = "1 + 4k" if first else "a multiple of 4"
            raise ValueError(
                f"VAE encode expects {expected} frames in [B, 3, T, H, W], got {tuple(video.shape)}"
            )
        model = self._vae.model
        # The first latent sees one frame, every later one four: the causal convs' strides assume it.
        bounds = [0, *range(first or TEMPORAL_STRIDE, frames + 1, TEMPORAL_STRIDE)]
        means = []
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            # Only the current group goes to the device: long source videos stay in host memory.
            group = video[:, :, start:stop].to(device=model.device, dtype=model.dtype)
            moments = model.quant_conv(self._cache.run(model.encoder, group))
            means.append(moments[:, : model.config.z_dim])
        self._started = True
        return self._vae.normalise(torch.cat(means, dim=2))


class StreamingDecoder:
    """Decode latents in consecutive pieces; the output equals one full decode of all of them."""

    def __init__(self, vae: "VideoVAE"):
        self._vae = vae
        self._cache = _CausalCache(vae.model.decoder)
        self._started = False

    @torch.inference_mode()
    def decode_next(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised [B, z, n, h, w] -> [B, 3, F, 8h, 8w] in [-1, 1]; F = 1 + 4(n-1) first, then 4n."""
        if latents.ndim != 5 or latents.shape[2] < 1:
            raise ValueError(f"VAE decode expects latents [B, z, n>=1, h, w], got {tuple(latents.shape)}")
        model = self._vae.model
        raw = self._vae.denormalise(latents).to(device=model.device, dtype=model.dtype)
        frames = []
        for index in range(raw.shape[2]):
            # Wan's decoder runs one latent frame at a time; the very first is upsampled to 1 frame.
            features = model.post_quant_conv(raw[:, :, index : index + 1])
            frames.append(self._cache.run(model.decoder, features, first_chunk=not self._started))
            self._started = True
        return torch.cat(frames, dim=2).float().clamp_(-1.0, 1.0)


class VideoVAE:
    temporal_stride = TEMPORAL_STRIDE
    spatial_stride = SPATIAL_STRIDE

    def __init__(self, model: AutoencoderKLWan):
        self.model = model.eval().requires_grad_(False)
        config = model.config
        self.latents_mean = torch.tensor(config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_inverse_std = 1.0 / torch.tensor(config.latents_std, dtype=torch.float32).view(
            1, -1, 1, 1, 1
        )

    @classmethod
    def from_pretrained(cls, path: Path, *, device="cpu", dtype=torch.float32) -> "VideoVAE":
        return cls(load_wan_vae(Path(path), dtype).to(device))

    @property
    def z_dim(self) -> int:
        return self.model.config.z_dim

    def normalise(self, posterior_mean: torch.Tensor) -> torch.Tensor:
        mean, inverse_std = (
            t.to(posterior_mean.device) for t in (self.latents_mean, self.latents_inverse_std)
        )
        return (posterior_mean.float() - mean) * inverse_std

    def denormalise(self, latents: torch.Tensor) -> torch.Tensor:
        mean, inverse_std = (t.to(latents.device) for t in (self.latents_mean, self.latents_inverse_std))
        return latents.float() / inverse_std + mean

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, 3, 1+4k, H, W] in [-1, 1] -> normalised posterior means [B, z, 1+k, H/8, W/8] (fp32)."""
        return self.streaming_encoder().encode_next(video)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised [B, z, 1+k, h, w] -> [B, 3, 1+4k, 8h, 8w] clamped to [-1, 1] (fp32)."""
        return self.streaming_decoder().decode_next(latents)

    def streaming_encoder(self) -> StreamingEncoder:
        return StreamingEncoder(self)

    def streaming_decoder(self) -> StreamingDecoder:
        return StreamingDecoder(self)


def make_tiny_vae(vae_dir: Path, *, base_dim: int = 8, z_dim: int = 16, seed: int = 0) -> None:
    """Random Wan2.1-architecture VAE (diffusers folder) with plausible per-channel latent stats."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    AutoencoderKLWan(
        base_dim=base_dim,
        z_dim=z_dim,
        latents_mean=[round(rng.uniform(-1.0, 1.0), 4) for _ in range(z_dim)],
        latents_std=[round(rng.uniform(0.5, 3.0), 4) for _ in range(z_dim)],
    ).save_pretrained(str(vae_dir))
