"""The blockwise wav2vec2 CNN against transformers' own feature extractor run on the whole clip."""

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from skyaudio_cli.conditioning.wav2vec2_cnn import conv_features, receptive_field


def _feature_extractor(norm: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(24,) * 7,
        feat_extract_norm=norm, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    model = Wav2Vec2Model(config).eval()
    # Non-trivial GroupNorm affine parameters, so applying them wrongly would show.
    with torch.no_grad():
        for parameter in model.feature_extractor.conv_layers[0].layer_norm.parameters():
            parameter.uniform_(0.5, 1.5)
    return model.feature_extractor


@pytest.mark.parametrize("norm", ["group", "layer"])
@pytest.mark.parametrize("samples", [400, 719, 720, 1039, 16000, 7 * 16000 + 123])
@pytest.mark.parametrize("block_frames", [1, 37, 100])
def test_blocks_equal_the_whole_clip(norm, samples, block_frames):
    extractor = _feature_extractor(norm)
    # A DC offset and a loud stretch: the first layer's per-channel statistics must be the clip's.
    values = torch.randn(1, samples, generator=torch.Generator().manual_seed(samples)) + 0.3
    values[:, samples // 3 :] *= 4.0
    with torch.no_grad():
        whole = extractor(values)
    blocks = conv_features(extractor, values, block_frames=block_frames)
    assert blocks.shape == whole.shape
    torch.testing.assert_close(blocks, whole, rtol=1e-5, atol=1e-5)


def test_receptive_field_of_the_release_cnn():
    # chinese-wav2vec2-base: kernels (10, 3, 3, 3, 3, 2, 2), strides (5, 2, 2, 2, 2, 2, 2):
    # one 50 Hz frame sees 25 ms of 16 kHz audio and frames are 20 ms apart.
    assert receptive_field(_feature_extractor("group").conv_layers) == (400, 320)


def test_no_layer_sees_more_than_one_block():
    extractor = _feature_extractor("group")
    widest = []
    hooks = [layer.conv.register_forward_hook(lambda _m, args, _o: widest.append(args[0].shape[-1]))
             for layer in extractor.conv_layers]  # fmt: skip
    values = torch.randn(1, 30 * 16000)
    conv_features(extractor, values, block_frames=50)
    for hook in hooks:
        hook.remove()
    # 50 frames of 320 samples plus the 80-sample overhang: 30 s of audio never enters at once.
    assert max(widest) == 49 * 320 + 400
