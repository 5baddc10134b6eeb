"""Shared tiny checkpoint (original release layout) and inputs for the model tests."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from skyaudio_cli.model.checkpoint import load_transformer
from skyaudio_cli.model.tiny import write_tiny_transformer

HEADS = 2
LATENT_SHAPE = (36, 3, 4, 6)  # channels, latent frames, height, width
VIDEO_FRAMES = 9  # 1 + 4 * (3 - 1)
AUDIO_WINDOW_SHAPE = (5, 2, 32)  # window, encoder layers, channels of the tiny writer defaults
TEXT_TOKENS_USED = 7


@pytest.fixture(scope="session")
def tiny_sources(tmp_path_factory) -> list[Path]:
    return write_tiny_transformer(tmp_path_factory.mktemp("tiny_dit"), heads=HEADS)


@pytest.fixture(scope="session")
def original_state_dict(tiny_sources) -> dict[str, torch.Tensor]:
    folder = tiny_sources[0]
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(shard)))
    return state


@pytest.fixture(scope="session")
def tiny_model(tiny_sources):
    return load_transformer(tiny_sources, dtype=torch.float32)


def make_inputs(batch: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Model inputs; text is zero-padded to 512 after TEXT_TOKENS_USED real tokens, as the pipeline does."""
    generator = torch.Generator().manual_seed(seed)
    text = torch.zeros(batch, 512, 32)
    text[:, :TEXT_TOKENS_USED] = torch.randn(batch, TEXT_TOKENS_USED, 32, generator=generator)
    return {
        "hidden_states": torch.randn(batch, *LATENT_SHAPE, generator=generator),
        "timestep": torch.full((batch,), 937.25),
        "encoder_hidden_states": text,
        "encoder_hidden_states_image": torch.randn(batch, 257, 32, generator=generator),
        "audio_embeds": torch.randn(batch, VIDEO_FRAMES, *AUDIO_WINDOW_SHAPE, generator=generator),
    }
