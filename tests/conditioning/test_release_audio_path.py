"""The audio path as released: features the transformer hears, frame for frame, on real speech.

Each expected value is computed here from the release's own recipe, on the loaded transformers
modules (not through the code under test), and compared with what `generate` feeds the pipeline:
`load_speech` -> `at_family_loudness` -> `feature_stream(...).rows(...)`.
"""

import subprocess

import numpy as np
import pyloudnorm
import pytest
import torch
import torch.nn.functional as F
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_stream import WhisperFeatureStream, feature_stream
from skyaudio_cli.media.audio import load_audio
from skyaudio_cli.pipeline.family import family_defaults
from skyaudio_cli.tasks.render import at_family_loudness, load_speech

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def long_speech_wav(tmp_path_factory, speech_wav):
    """About 35 s of real espeak-ng speech: longer than one 30 s Whisper chunk."""
    path = tmp_path_factory.mktemp("long_speech") / "long.wav"
    text = " ".join(["The quick brown fox jumps over the lazy dog, and then it talks about the weather."] * 8)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="module")
def wav2vec2(tiny_model):
    return load_audio_encoder(tiny_model / "audio_encoder", "wav2vec2")


def release_wav2vec2_features(encoder, samples: np.ndarray, num_frames: int) -> torch.Tensor:
    """SkyReels-V3 / InfiniteTalk `get_embedding`: normalise the whole real clip, CNN, stretch the
    50 Hz features onto `num_frames` (linear, aligned corners), project, encoder, hidden_states[1:]."""
    model = encoder.model
    values = encoder.normaliser(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
    with torch.no_grad():
        cnn = model.feature_extractor(values)  # [1, C, T50]
        stretched = F.interpolate(cnn, size=num_frames, mode="linear", align_corners=True).transpose(1, 2)
        hidden, _ = model.feature_projection(stretched)
        # transformers 4.x hidden_states[1:] of a post-norm encoder: each layer's output, taken here
        # with hooks on transformers' own encoder forward.
        outputs = []
        hooks = [
            layer.register_forward_hook(
                lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out)
            )
            for layer in model.encoder.layers
        ]
        try:
            model.encoder(hidden)
        finally:
            for hook in hooks:
                hook.remove()
    assert not model.config.do_stable_layer_norm
    return torch.stack(outputs, dim=2)[0]


@pytest.mark.parametrize(
    ("family", "frames_of"),
    [
        # SkyReels-V3: int(np.ceil(len / 16000 * 25)); InfiniteTalk: int(len / 16000 * 25).
        ("skyreels-v3-a2v", lambda n: int(np.ceil(n / 16000 * 25))),
        ("infinitetalk", lambda n: int(n / 16000 * 25)),
    ],
)
def test_wav2vec2_features_are_the_releases_on_unpadded_speech(wav2vec2, speech_wav, family, frames_of):
    defaults = family_defaults(family)
    speech = at_family_loudness(load_speech(speech_wav, 3600.0), defaults)
    assert speech.size % 640 != 0, "the test needs speech that is not a whole number of frames"
    stream = feature_stream(wav2vec2, speech, defaults.fps, defaults.audio_frames)
    assert stream.num_frames == frames_of(speech.size)

    # The release: pyloudnorm to -23 LUFS (no peak limit), then the whole real clip.
    raw = load_audio(speech_wav).astype(np.float64)
    loudness = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(raw)
    released = (raw * 10 ** ((-23.0 - loudness) / 20)).astype(np.float32)
    expected = release_wav2vec2_features(wav2vec2, released, frames_of(speech.size))

    ours = stream.rows(range(stream.num_frames))
    # The gain differs only where ours caps peaks at full scale, which the normaliser divides out.
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)


def test_padding_the_samples_would_shift_the_features(wav2vec2, speech_wav):
    # Guard: the mirrored-sample padding this replaces gives visibly different features, so the
    # test above can tell the two apart.
    samples = load_audio(speech_wav)
    frames = int(np.ceil(samples.size / 16000 * 25))
    padded = np.concatenate([samples, samples[::-1][: frames * 640 - samples.size]])
    assert padded.size != samples.size
    difference = (
        release_wav2vec2_features(wav2vec2, padded, frames)
        - release_wav2vec2_features(wav2vec2, samples, frames)
    ).abs()
    assert difference.max() > 1e-3


@pytest.mark.parametrize("family", ["humo-17b", "humo-1.7b", "tiny-humo", "tiny-humo-1.7b"])
def test_humo_families_feed_whisper_the_samples_at_their_own_level(speech_wav, family):
    speech = at_family_loudness(load_speech(speech_wav, 3600.0), family_defaults(family))
    np.testing.assert_array_equal(speech[:], load_audio(speech_wav))


@pytest.mark.parametrize("family", ["skyreels-v3-a2v", "infinitetalk", "tiny-random"])
def test_wav2vec2_families_normalise_to_minus_23_lufs(speech_wav, family):
    speech = at_family_loudness(load_speech(speech_wav, 3600.0), family_defaults(family))
    measured = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(speech[:].astype(np.float64))
    assert measured == pytest.approx(-23.0, abs=0.05)


def release_whisper_rows(folder, samples: np.ndarray, fps: float = 25.0) -> torch.Tensor:
    """HuMo's AudioProcessor: 30 s chunks from sample 0, each log-mel'd (zero-padded to 30 s) and
    encoded; hidden states as transformers 4.x returned them (embedding, each layer's output, the
    last one after the final LayerNorm); concatenated, trimmed to 2 x (len // 640) rows, grouped
    into four layer means + the final output, and stretched onto int(rows / 50 x fps) frames once."""
    mel = WhisperFeatureExtractor.from_pretrained(folder)
    encoder = WhisperForConditionalGeneration.from_pretrained(folder).model.encoder.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, samples.size, 480000):
            features = mel(samples[start : start + 480000], sampling_rate=SAMPLE_RATE, return_tensors="pt")
            x = F.gelu(encoder.conv1(features.input_features))
            x = F.gelu(encoder.conv2(x)).permute(0, 2, 1) + encoder.embed_positions.weight
            states = [x]
            for layer in encoder.layers:
                x = layer(x, attention_mask=None)
                x = x[0] if isinstance(x, tuple) else x
                states.append(x)
            states[-1] = encoder.layer_norm(x)
            chunks.append(torch.stack(states, dim=2)[0])  # [1500, layers + 1, C]
    rows = 2 * (samples.size // 640)
    stacked = torch.cat(chunks)[:rows]
    per_group = (stacked.shape[1] - 1) // 4
    grouped = torch.stack(
        [stacked[:, g * per_group : (g + 1) * per_group].mean(1) for g in range(4)] + [stacked[:, -1]], dim=1
    )
    frames = int(rows / 50 * fps)
    flat = grouped.reshape(rows, -1).T[None]
    return F.interpolate(flat, size=frames, mode="linear", align_corners=True)[0].T.reshape(frames, 5, -1)


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from skyaudio_cli.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("humo_audio") / "humo", layout="humo-1.7b") / "audio_encoder"


def test_whisper_rows_past_30_s_land_on_the_releases_global_grid(tiny_whisper, long_speech_wav):
    speech = at_family_loudness(load_speech(long_speech_wav, 3600.0), family_defaults("humo-17b"))
    assert speech.size > 30 * SAMPLE_RATE and speech.size % 640 != 0
    encoder = load_audio_encoder(tiny_whisper, "whisper")
    stream = feature_stream(encoder, speech, 25.0)
    assert isinstance(stream, WhisperFeatureStream)

    expected = release_whisper_rows(tiny_whisper, load_audio(long_speech_wav))
    assert stream.num_frames == expected.shape[0] == speech.size // 640
    # As a long video reads them: window by window, forward, never the whole clip at once.
    ours = torch.cat([stream.rows(range(start, min(start + 97, stream.num_frames))) for start in
                      range(0, stream.num_frames, 97)])  # fmt: skip
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)
