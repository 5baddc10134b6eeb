"""Wan VAE wrapper: normalisation, shapes, streaming equal to a full decode, the original `.pth` route."""

import re
from pathlib import Path

import pytest
import torch

from skyaudio_cli.conditioning.vae import VideoVAE, make_tiny_vae
from skyaudio_cli.errors import WeightsError


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vae") / "vae"
    make_tiny_vae(folder)
    return folder


@pytest.fixture(scope="module")
def vae(vae_dir) -> VideoVAE:
    return VideoVAE.from_pretrained(vae_dir)


def random_video(frames: int, height: int = 16, width: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def random_latents(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 16, frames, 2, 3, generator=torch.Generator().manual_seed(seed))


def original_wan_vae_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKLWan names -> Wan's WanVAE_ names (wan/modules/vae.py, Wan2.1 layout)."""
    resnet_parts = {
        "norm1.gamma": "residual.0.gamma",
        "conv1": "residual.2",
        "norm2.gamma": "residual.3.gamma",
        "conv2": "residual.6",
        "conv_shortcut": "shortcut",
    }

    def resnet(rest: str) -> str:
        for part, original in resnet_parts.items():
            if rest.startswith(part):
                return original + rest[len(part) :]
        raise AssertionError(rest)

    def rename(key: str) -> str:
        rules = [
            (r"quant_conv\.(.+)", lambda m: f"conv1.{m[1]}"),
            (r"post_quant_conv\.(.+)", lambda m: f"conv2.{m[1]}"),
            (r"(encoder|decoder)\.conv_in\.(.+)", lambda m: f"{m[1]}.conv1.{m[2]}"),
            (r"(encoder|decoder)\.norm_out\.(.+)", lambda m: f"{m[1]}.head.0.{m[2]}"),
            (r"(encoder|decoder)\.conv_out\.(.+)", lambda m: f"{m[1]}.head.2.{m[2]}"),
            (
                r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)",
                lambda m: f"{m[1]}.middle.{2 * int(m[2])}.{resnet(m[3])}",
            ),
            (r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", lambda m: f"{m[1]}.middle.1.{m[2]}"),
            (
                r"encoder\.down_blocks\.(\d+)\.(resample|time_conv)(.+)",
                lambda m: f"encoder.downsamples.{m[1]}.{m[2]}{m[3]}",
            ),
            (r"encoder\.down_blocks\.(\d+)\.(.+)", lambda m: f"encoder.downsamples.{m[1]}.{resnet(m[2])}"),
            (
                r"decoder\.up_blocks\.(\d)\.resnets\.(\d)\.(.+)",
                lambda m: f"decoder.upsamples.{4 * int(m[1]) + int(m[2])}.{resnet(m[3])}",
            ),
            (
                r"decoder\.up_blocks\.(\d)\.upsamplers\.0\.(.+)",
                lambda m: f"decoder.upsamples.{4 * int(m[1]) + 3}.{m[2]}",
            ),
        ]
        for pattern, replace in rules:
            match = re.fullmatch(pattern, key)
            if match:
                return replace(match)
        raise AssertionError(f"no rule for {key}")

    return {rename(key): tensor.clone() for key, tensor in state.items()}


def test_encode_shapes_and_normalisation_round_trip(vae):
    video = random_video(9)
    latents = vae.encode(video)
    assert latents.shape == (1, 16, 3, 2, 3) and latents.dtype == torch.float32

    posterior_mean = vae.model.encode(video).latent_dist.mean
    mean = torch.tensor(vae.model.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.model.config.latents_std).view(1, -1, 1, 1, 1)
    torch.testing.assert_close(latents * std + mean, posterior_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vae.denormalise(latents), posterior_mean, atol=1e-5, rtol=1e-5)


def test_decode_matches_diffusers_decode_of_denormalised_latents(vae):
    latents = random_latents(3)
    pixels = vae.decode(latents)
    assert pixels.shape == (1, 3, 9, 16, 24)
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    expected = vae.model.decode(vae.denormalise(latents)).sample
    # diffusers runs the 1x1x1 post_quant_conv on all frames at once, we per frame: fp32 rounding only.
    torch.testing.assert_close(pixels, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("split", [(1, 1, 1, 1), (2, 2), (3, 1)])
def test_streaming_decode_in_chunks_equals_full_decode(vae, split):
    latents = random_latents(sum(split), seed=len(split))
    full = vae.decode(latents)
    stream = vae.streaming_decoder()
    pieces, start = [], 0
    for size in split:
        piece = stream.decode_next(latents[:, :, start : start + size])
        assert piece.shape[2] == (1 + 4 * (size - 1) if start == 0 else 4 * size)
        pieces.append(piece)
        start += size
    torch.testing.assert_close(torch.cat(pieces, dim=2), full, atol=1e-6, rtol=0)


def test_streaming_decoder_memory_is_constant(vae):
    stream = vae.streaming_decoder()
    stream.decode_next(random_latents(1))
    sizes = None
    for seed in range(3):
        stream.decode_next(random_latents(1, seed=seed))
        entries = [e for e in stream._cache.entries if isinstance(e, torch.Tensor)]
        assert all(e.shape[2] <= 2 for e in entries)  # at most two frames per causal conv
        now = [e.numel() for e in entries]
        assert sizes is None or now == sizes
        sizes = now
    assert set(vars(stream)) == {"_vae", "_cache", "_started"}


def test_streaming_encode_in_pieces_equals_full_encode(vae):
    video = random_video(13)
    stream = vae.streaming_encoder()
    pieces = [stream.encode_next(video[:, :, :5]), stream.encode_next(video[:, :, 5:13])]
    torch.testing.assert_close(torch.cat(pieces, dim=2), vae.encode(video), atol=1e-6, rtol=0)


def test_encode_rejects_frame_counts_not_one_plus_multiple_of_four(vae):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        vae.encode(random_video(8))


def test_33_frame_round_trip_shapes(vae):
    latents = vae.encode(random_video(33, 24, 16))
    assert latents.shape == (1, 16, 9, 3, 2)
    assert vae.decode(latents).shape == (1, 3, 33, 24, 16)


def test_original_pth_route_matches_key_for_key_and_numerically(vae, tmp_path):
    original = original_wan_vae_state_dict(vae.model.state_dict())
    # Keys as in the released Wan2.1_VAE.pth (diffusers detects the format by the first one).
    for key in (
        "decoder.middle.0.residual.0.gamma",
        "conv1.weight",
        "conv2.weight",
        "decoder.upsamples.3.time_conv.weight",
    ):
        assert key in original
    assert not any(
        re.search(r"mid_block|up_blocks|down_blocks|resnets|conv_in|quant_conv", k) for k in original
    )
    torch.save(original, tmp_path / "Wan2.1_VAE.pth")

    loaded = VideoVAE.from_pretrained(tmp_path / "Wan2.1_VAE.pth")

    expected = vae.model.state_dict()
    assert set(loaded.model.state_dict()) == set(expected)
    for key, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, expected[key]), key
    latents = random_latents(2)
    # The .pth carries no latent stats: Wan2.1's fixed mean/std (diffusers' defaults) apply.
    loaded_raw = loaded.model.decode(latents).sample
    torch.testing.assert_close(loaded_raw, vae.model.decode(latents).sample, atol=0, rtol=0)


def test_original_pth_missing_a_tensor_is_rejected(vae, tmp_path):
    original = original_wan_vae_state_dict(vae.model.state_dict())
    del original["decoder.head.2.bias"]
    torch.save(original, tmp_path / "vae.pth")
    with pytest.raises(WeightsError, match="vae.pth"):
        VideoVAE.from_pretrained(tmp_path / "vae.pth")


def test_folder_missing_weights_names_the_file(vae_dir, tmp_path):
    folder = tmp_path / "vae"
    folder.mkdir()
    (folder / "config.json").write_bytes((vae_dir / "config.json").read_bytes())
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.safetensors"):
        VideoVAE.from_pretrained(folder)
