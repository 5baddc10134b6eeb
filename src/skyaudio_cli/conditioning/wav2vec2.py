"""chinese-wav2vec2-base features for the skyreels-v3-a2v and infinitetalk families.

The references (InfiniteTalk/SkyReels-V3 `Wav2Vec2Model` subclasses, transformers 4.x) stretch the
50 Hz CNN features onto the video frame grid BEFORE the transformer encoder and keep
`hidden_states[1:]`, i.e. the output of every encoder layer. transformers 5.x records hidden states
with hooks and, for `do_stable_layer_norm` models, no longer applies the final LayerNorm to the last
one, so the encoder is stepped through here with the 4.x meaning spelled out.

Long audio: like the references, attention spans the whole clip it is given; the long-video code
(conditioning/audio_stream.py) hands it 30 s chunks. Within a clip the CNN runs in 2 s blocks with the
clip's own GroupNorm statistics (wav2vec2_cnn.py), which gives the whole-clip result in bounded
memory.
"""

import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining, Wav2Vec2Model

from skyaudio_cli.conditioning.audio_features import (
    SAMPLE_RATE,
    AudioFeatureEncoder,
    require_speech,
    stretch_to_frames,
)
from skyaudio_cli.conditioning.checkpoint_files import (
    load_pth_state_dict,
    read_config_json,
    require_matching_tensors,
)
from skyaudio_cli.conditioning.wav2vec2_cnn import conv_features as cnn_features
from skyaudio_cli.errors import InputError, WeightsError

SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"
# The Hub checkpoint is a Wav2Vec2ForPreTraining: the base model under "wav2vec2." plus the
# contrastive-training heads and the time-mask embedding, none of which inference uses.
_BASE_PREFIX = "wav2vec2."
_TRAINING_ONLY = re.compile(r"^(quantizer\.|project_hid\.|project_q\.|masked_spec_embed$)")
# Checkpoints saved before torch's weight-norm parametrizations call the two halves weight_g, weight_v.
_LEGACY_WEIGHT_NORM = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


class Wav2Vec2FeatureEncoder(AudioFeatureEncoder):
    kind = "wav2vec2"

    def __init__(self, model: Wav2Vec2Model, normaliser: Wav2Vec2FeatureExtractor):
        self.model = model.eval()
        self.normaliser = normaliser
        self.num_layers = model.config.num_hidden_layers
        self.channels = model.config.hidden_size
        self._device = next(model.parameters()).device
        self._dtype = next(model.parameters()).dtype

    @torch.no_grad()
    def encode(self, wave: np.ndarray, num_frames: int) -> torch.Tensor:
        wave = require_speech(wave)
        if conv_output_length(self.model.config, wave.size) < 1:
            raise InputError(f"audio: {wave.size} samples is shorter than one wav2vec2 frame")
        # Zero-mean/unit-variance over the whole clip when preprocessor_config.json says do_normalize.
        values = self.normaliser(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
        conv_features = cnn_features(self.model.feature_extractor, values.to(self._device, self._dtype))[0].T
        per_frame = stretch_to_frames(conv_features, num_frames).unsqueeze(0)
        hidden, _ = self.model.feature_projection(per_frame)
        layers = encoder_layer_outputs(self.model.encoder, hidden, self.model.config.do_stable_layer_norm)
        return torch.stack(layers, dim=2)[0].float().cpu()


def encoder_layer_outputs(
    encoder: nn.Module, hidden: torch.Tensor, stable_layer_norm: bool
) -> list[torch.Tensor]:
    """transformers 4.x `hidden_states[1:]`: every layer's output (stable variant: the last post-norm)."""
    hidden = hidden + encoder.pos_conv_embed(hidden)
    if not stable_layer_norm:
        hidden = encoder.layer_norm(hidden)
    outputs = []
    for layer in encoder.layers:
        hidden = layer(hidden)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # 4.x layers return (hidden, attn)
        outputs.append(hidden)
    if stable_layer_norm:
        outputs[-1] = encoder.layer_norm(outputs[-1])
    return outputs


def conv_output_length(config: Wav2Vec2Config, num_samples: int) -> int:
    """Frames the CNN feature extractor yields for `num_samples` (unpadded convolutions)."""
    length = num_samples
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        length = (length - kernel) // stride + 1
    return max(length, 0)


def load_wav2vec2(
    folder: Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Wav2Vec2FeatureEncoder:
    """Load a folder with config.json, preprocessor_config.json and model.safetensors or pytorch_model.bin."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: wav2vec2 folder not found")
    config = Wav2Vec2Config.from_dict(read_config_json(folder / "config.json"))
    # Masking is a training-time augmentation; without it the model has no masked_spec_embed.
    config.mask_time_prob = config.mask_feature_prob = 0.0
    normaliser = Wav2Vec2FeatureExtractor.from_dict(read_config_json(folder / "preprocessor_config.json"))
    if normaliser.sampling_rate != SAMPLE_RATE:
        raise WeightsError(f"{folder / 'preprocessor_config.json'}: sampling_rate must be {SAMPLE_RATE}")

    weights_path, state_dict = _read_state_dict(folder)
    state_dict = base_model_state_dict(state_dict)
    with torch.device("meta"):
        model = Wav2Vec2Model(config)
    require_matching_tensors(weights_path, model.state_dict(), state_dict)
    model.load_state_dict(state_dict, assign=True)
    return Wav2Vec2FeatureEncoder(model.to(device=device, dtype=dtype), normaliser)


def base_model_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hub (pre-training, legacy weight-norm) key names -> a bare Wav2Vec2Model's key names."""
    renamed = {}
    for key, tensor in state_dict.items():
        key = key.removeprefix(_BASE_PREFIX)
        if _TRAINING_ONLY.match(key):
            continue
        renamed[_replace_suffix(key, _LEGACY_WEIGHT_NORM)] = tensor
    return renamed


def _replace_suffix(key: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if key.endswith(f".{old}"):
            return key.removesuffix(old) + new
    return key


def _read_state_dict(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    safetensors_path = folder / SAFETENSORS_NAME
    if safetensors_path.is_file():
        try:
            return safetensors_path, load_file(safetensors_path)
        except (SafetensorError, OSError) as error:
            raise WeightsError(f"{safetensors_path}: unreadable safetensors ({error})") from error
    pickle_path = folder / PICKLE_NAME
    if not pickle_path.is_file():
        raise WeightsError(f"{folder}: neither {SAFETENSORS_NAME} nor {PICKLE_NAME} found")
    return pickle_path, load_pth_state_dict(pickle_path)


def make_tiny_wav2vec2(folder: Path, *, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a random tiny chinese-wav2vec2-base look-alike: same files, key names and 50 Hz CNN.

    Keys are those of the Hub's pytorch_model.bin (a Wav2Vec2ForPreTraining with legacy weight-norm
    names), stored as safetensors, so the loader's renaming is exercised on every tiny run.
    """
    config = Wav2Vec2Config(
        architectures=["Wav2Vec2ForPreTraining"],
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(hidden_size,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        codevector_dim=16,
        proj_codevector_dim=16,
        num_codevectors_per_group=8,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
    )
    torch.manual_seed(seed)
    model = Wav2Vec2ForPreTraining(config)
    legacy_names = {new: old for old, new in _LEGACY_WEIGHT_NORM.items()}
    state_dict = {_replace_suffix(key, legacy_names): t.contiguous() for key, t in model.state_dict().items()}

    folder.mkdir(parents=True, exist_ok=True)
    config.to_json_file(folder / "config.json")
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=False,
    ).to_json_file(folder / "preprocessor_config.json")
    save_file(state_dict, folder / SAFETENSORS_NAME)
    return folder
