"""Whisper large-v3 encoder features for the humo-* families (HuMo's AudioProcessor; README: HuMo models).

Recipe, as HuMo runs it: cut the 16 kHz wave into 30 s chunks; per chunk the HF feature extractor's
log-mel (the last chunk zero-padded to 30 s first, each chunk normalised by its own maximum); run
the encoder on the 3000 mel frames; keep its hidden states in transformers' meaning (embedding,
layers 1..N-1, then the post-LayerNorm final output); trim to the audio's 50 Hz length; per step
average four equal groups of those states (large-v3: 0-7, 8-15, 16-23, 24-31; the raw output of
layer 32 is in none) and append the final output -> 5 features; stretch 50 Hz onto the video frames.

The module tree is openai-whisper's `AudioEncoder`; the weights come from the Hub's transformers-
format `model.safetensors`, renamed here. Chunks are encoded one at a time and reduced to 5 features
straight away, so memory grows with the audio only by 5 x 1280 floats per 20 ms.
"""

import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
from whisper.model import AudioEncoder, ModelDimensions

from skyaudio_cli.conditioning.audio_features import (
    SAMPLE_RATE,
    AudioFeatureEncoder,
    require_speech,
    stretch_to_frames,
)
from skyaudio_cli.conditioning.checkpoint_files import (
    read_config_json,
    require_file,
    require_matching_tensors,
)
from skyaudio_cli.errors import WeightsError

WEIGHTS_NAME = "model.safetensors"
LAYER_GROUPS = 4
CHUNK_SECONDS = 30
CHUNK_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE
# The encoder's conv2 halves the 100 Hz mel rate: one output step per 320 samples.
SAMPLES_PER_STEP = 320
STEPS_PER_SECOND = SAMPLE_RATE // SAMPLES_PER_STEP
# HuMo trims the 50 Hz rows to two per whole 25 fps frame of audio: 2 x floor(samples / 640).
SAMPLES_PER_TRIM_FRAME = 2 * SAMPLES_PER_STEP

_HF_ENCODER_PREFIX = "model.encoder."
_HF_TO_OPENAI_TOP = {
    "conv1.weight": "conv1.weight",
    "conv1.bias": "conv1.bias",
    "conv2.weight": "conv2.weight",
    "conv2.bias": "conv2.bias",
    "embed_positions.weight": "positional_embedding",
    "layer_norm.weight": "ln_post.weight",
    "layer_norm.bias": "ln_post.bias",
}
_HF_TO_OPENAI_LAYER = {
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_HF_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(.+)\.(weight|bias)$")


class WhisperFeatureEncoder(AudioFeatureEncoder):
    kind = "whisper"
    num_layers = LAYER_GROUPS + 1

    def __init__(self, encoder: AudioEncoder, mel: WhisperFeatureExtractor):
        self.encoder = encoder.eval()
        self.mel = mel
        self.channels = encoder.ln_post.normalized_shape[0]
        self._layers_per_group = len(encoder.blocks) // LAYER_GROUPS
        self._device = encoder.conv1.weight.device
        self._dtype = encoder.conv1.weight.dtype

    def encode(self, wave: np.ndarray, num_frames: int) -> torch.Tensor:
        rows, _ = whisper_grid(wave.size)
        return stretch_to_frames(self.features_50hz(wave)[:rows], num_frames)

    @torch.no_grad()
    def features_50hz(self, wave: np.ndarray) -> torch.Tensor:
        """float32 [ceil(samples / 320), 5, channels] on the CPU, one row per 20 ms of audio.

        Each 30 s chunk is encoded on its own, so a row depends only on its own chunk: the first
        30 s give the same rows whatever follows them.
        """
        wave = require_speech(wave)
        rows = []
        for start in range(0, wave.size, CHUNK_SAMPLES):
            chunk = wave[start : start + CHUNK_SAMPLES]
            mel = self.mel(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
            hidden_states = self.hidden_states(mel.to(self._device, self._dtype))
            steps = -(-chunk.size // SAMPLES_PER_STEP)
            rows.append(self._group_layers(hidden_states)[0, :steps].float().cpu())
        return torch.cat(rows)

    def hidden_states(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """transformers' WhisperEncoder `hidden_states` for [batch, n_mels, 3000] mel frames.

        Embedding, then each layer's output, except that the last entry is the final layer's output
        after `ln_post` (HuMo's index 32 for large-v3).
        """
        encoder = self.encoder
        x = F.gelu(encoder.conv1(mel))
        x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
        x = (x + encoder.positional_embedding).to(x.dtype)
        states = [x]
        for block in encoder.blocks:
            x = block(x)
            states.append(x)
        states[-1] = encoder.ln_post(x)
        return states

    def _group_layers(self, hidden_states: list[torch.Tensor]) -> torch.Tensor:
        """[batch, steps, 5, channels]: means of four equal groups of states, then the final output."""
        size = self._layers_per_group
        groups = [
            torch.stack(hidden_states[g * size : (g + 1) * size]).float().mean(dim=0)
            for g in range(LAYER_GROUPS)
        ]
        return torch.stack([*groups, hidden_states[-1].float()], dim=2)


def whisper_grid(num_samples: int, fps: float = 25.0) -> tuple[int, int]:
    """(50 Hz rows kept, video frames) for `num_samples` of audio, as HuMo's audio processor sizes
    them: rows = 2 x floor(samples / 640), frames = int(rows / 50 x fps)."""
    rows = 2 * (num_samples // SAMPLES_PER_TRIM_FRAME)
    return rows, math.floor(Fraction(rows, STEPS_PER_SECOND) * Fraction(fps).limit_denominator(1_000_000))


def load_whisper_encoder(
    folder: Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> WhisperFeatureEncoder:
    """Load the encoder half of a transformers Whisper folder (config.json, preprocessor_config.json,
    model.safetensors) into openai-whisper's AudioEncoder; decoder weights are never read."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: whisper folder not found")
    config_path = folder / "config.json"
    config = WhisperConfig.from_dict(read_config_json(config_path))
    mel_path = folder / "preprocessor_config.json"
    mel = WhisperFeatureExtractor.from_dict(read_config_json(mel_path))
    _require_compatible(config, mel, config_path, mel_path)

    weights_path = require_file(folder / WEIGHTS_NAME)
    state_dict = openai_encoder_state_dict(_read_encoder_tensors(weights_path))
    with torch.device("meta"):
        dims = _model_dimensions(config)
        encoder = AudioEncoder(
            dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer
        )
    require_matching_tensors(weights_path, encoder.state_dict(), state_dict)
    encoder.load_state_dict(state_dict, assign=True)
    encoder.to(device=device, dtype=dtype)
    # openai-whisper's LayerNorm computes in fp32 and needs fp32 parameters (norms stay fp32 anyway).
    for module in encoder.modules():
        if isinstance(module, nn.LayerNorm):
            module.float()
    return WhisperFeatureEncoder(encoder, mel)


def openai_encoder_state_dict(hf_encoder: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers WhisperEncoder key names (without "model.encoder.") -> openai-whisper AudioEncoder names.

    Keys with no counterpart are passed through unchanged so the strict check reports them.
    """
    renamed = {}
    for key, tensor in hf_encoder.items():
        layer = _HF_LAYER_KEY.match(key)
        if key in _HF_TO_OPENAI_TOP:
            key = _HF_TO_OPENAI_TOP[key]
        elif layer and layer[2] in _HF_TO_OPENAI_LAYER:
            key = f"blocks.{layer[1]}.{_HF_TO_OPENAI_LAYER[layer[2]]}.{layer[3]}"
        renamed[key] = tensor
    return renamed


def _model_dimensions(config: WhisperConfig) -> ModelDimensions:
    """transformers' config names -> openai-whisper's."""
    return ModelDimensions(
        n_mels=config.num_mel_bins,
        n_audio_ctx=config.max_source_positions,
        n_audio_state=config.d_model,
        n_audio_head=config.encoder_attention_heads,
        n_audio_layer=config.encoder_layers,
        n_vocab=config.vocab_size,
        n_text_ctx=config.max_target_positions,
        n_text_state=config.d_model,
        n_text_head=config.decoder_attention_heads,
        n_text_layer=config.decoder_layers,
    )


def _require_compatible(
    config: WhisperConfig, mel: WhisperFeatureExtractor, config_path: Path, mel_path: Path
):
    """Reject folders the openai-whisper module tree or HuMo's recipe cannot represent."""
    if config.encoder_layers % LAYER_GROUPS:
        raise WeightsError(f"{config_path}: encoder_layers must be a multiple of {LAYER_GROUPS}")
    if config.encoder_ffn_dim != 4 * config.d_model:
        raise WeightsError(f"{config_path}: openai-whisper needs encoder_ffn_dim = 4 x d_model")
    if mel.feature_size != config.num_mel_bins or mel.sampling_rate != SAMPLE_RATE:
        raise WeightsError(f"{mel_path}: expected {config.num_mel_bins} mel bins at {SAMPLE_RATE} Hz")
    if mel.nb_max_frames != 2 * config.max_source_positions or mel.n_samples != CHUNK_SAMPLES:
        raise WeightsError(
            f"{mel_path}: expected {CHUNK_SECONDS} s chunks of {2 * config.max_source_positions} frames"
        )


def _read_encoder_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(path, framework="pt") as weights:
            return {
                key.removeprefix(_HF_ENCODER_PREFIX): weights.get_tensor(key)
                for key in weights.keys()  # noqa: SIM118 - safe_open is not a mapping
                if key.startswith(_HF_ENCODER_PREFIX)
            }
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"{path}: unreadable safetensors ({error})") from error


def make_tiny_whisper(folder: Path, *, d_model: int = 32, layers: int = 4, seed: int = 0) -> Path:
    """Write a random tiny openai/whisper-large-v3 look-alike: 128 mels, 30 s chunks, encoder and
    decoder keys under "model." exactly as the Hub's model.safetensors."""
    config = WhisperConfig(
        architectures=["WhisperForConditionalGeneration"],
        num_mel_bins=128,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        vocab_size=64,
        max_target_positions=32,
        max_source_positions=CHUNK_SECONDS * SAMPLE_RATE // SAMPLES_PER_STEP,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    # Tied output projection: the Hub file stores only the token embedding.
    state_dict = {
        key: t.contiguous() for key, t in model.state_dict().items() if not key.startswith("proj_out.")
    }
    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(folder / "config.json")
    WhisperFeatureExtractor(feature_size=128, sampling_rate=SAMPLE_RATE).to_json_file(
        folder / "preprocessor_config.json"
    )
    save_file(state_dict, folder / WEIGHTS_NAME)
    return folder
