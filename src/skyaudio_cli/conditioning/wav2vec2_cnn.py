"""wav2vec2's CNN feature extractor over long audio in bounded memory, with the whole-clip result.

Run on a whole clip, the CNN's first activations are the largest tensors of the audio encoder
(chinese-wav2vec2-base: 512 channels at 3.2 kHz, ~200 MB per 30 s in fp32, several alive at once).
Its convolutions are unpadded, so output frame i depends only on input samples
[i * stride, i * stride + field): blocks of output frames are computed from overlapping slices of
the input. The one global operation is the first layer's GroupNorm in "group" models (one group
per channel: each channel normalised over the whole clip); its statistics are gathered in a first
pass over the same slices and applied in the second. "layer" models normalise each frame alone.
"""

import torch
from torch import nn

BLOCK_FRAMES = 100  # output frames (2 s at 50 Hz) per block


def receptive_field(conv_layers: nn.ModuleList) -> tuple[int, int]:
    """(samples one output frame sees, samples between consecutive output frames)."""
    field, stride = 1, 1
    for layer in conv_layers:
        field += (layer.conv.kernel_size[0] - 1) * stride
        stride *= layer.conv.stride[0]
    return field, stride


@torch.no_grad()
def conv_features(
    feature_extractor: nn.Module, values: torch.Tensor, block_frames: int = BLOCK_FRAMES
) -> torch.Tensor:
    """`feature_extractor(values)` ([1, samples] -> [1, channels, frames]) computed block by block."""
    layers = feature_extractor.conv_layers
    field, stride = receptive_field(layers)
    frames = (values.shape[-1] - field) // stride + 1
    first = layers[0]
    norm = getattr(first, "layer_norm", None)
    per_channel = isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels
    if isinstance(norm, nn.GroupNorm) and not per_channel:
        return feature_extractor(values)  # grouped statistics: no such model is released
    if per_channel:
        shift, scale = _first_layer_statistics(first, values, block_frames * stride // first.conv.stride[0])

    blocks = []
    for start in range(0, frames, block_frames):
        stop = min(frames, start + block_frames)
        hidden = values[:, start * stride : (stop - 1) * stride + field][:, None]
        for index, layer in enumerate(layers):
            if index == 0 and per_channel:
                normalised = (layer.conv(hidden).double() - shift) * scale + norm.bias.double()[:, None]
                hidden = layer.activation(normalised.to(hidden.dtype))
            else:
                hidden = layer(hidden)
        blocks.append(hidden)
    return torch.cat(blocks, dim=2)


def _first_layer_statistics(
    first: nn.Module, values: torch.Tensor, per_block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """GroupNorm's per-channel mean and weight / sqrt(var + eps), [channels, 1] float64, over all of
    the first layer's frames (also those past the last output frame's reach: the whole-clip
    GroupNorm sees them too), `per_block` first-layer frames at a time."""
    conv, norm = first.conv, first.layer_norm
    kernel, first_stride = conv.kernel_size[0], conv.stride[0]
    first_frames = (values.shape[-1] - kernel) // first_stride + 1
    total = torch.zeros(conv.out_channels, dtype=torch.float64, device=values.device)
    squares = torch.zeros_like(total)
    for start in range(0, first_frames, per_block):
        stop = min(first_frames, start + per_block)
        piece = values[:, start * first_stride : (stop - 1) * first_stride + kernel][:, None]
        out = conv(piece)[0].double()
        total += out.sum(dim=1)
        squares += out.square().sum(dim=1)
    mean = total / first_frames
    variance = (squares / first_frames - mean.square()).clamp_min(0.0)
    scale = norm.weight.double() / torch.sqrt(variance + norm.eps)
    return mean[:, None], scale[:, None]
