"""Load the audio encoder a family names; the one module that knows both encoders.

Kept apart from audio_features.py (the interface both encoders implement), so neither encoder
module imports a module that imports it back.
"""

from pathlib import Path

import torch

from skyaudio_cli.conditioning.audio_features import AudioFeatureEncoder
from skyaudio_cli.errors import InputError
from skyaudio_cli.weights.manifest import AUDIO_ENCODERS


def load_audio_encoder(
    path: Path, kind: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> AudioFeatureEncoder:
    """Load the `kind` encoder from its Hugging Face folder at `path`.

    float32 (the default) is what the references run these small encoders in; bf16 halves memory at
    a small cost in feature precision. Each encoder's libraries are imported only when it is used.
    """
    if kind == "wav2vec2":
        from skyaudio_cli.conditioning.wav2vec2 import load_wav2vec2

        return load_wav2vec2(path, device=device, dtype=dtype)
    if kind == "whisper":
        from skyaudio_cli.conditioning.whisper_encoder import load_whisper_encoder

        return load_whisper_encoder(path, device=device, dtype=dtype)
    raise InputError(f"audio encoder kind {kind!r}: expected one of {', '.join(AUDIO_ENCODERS)}")
