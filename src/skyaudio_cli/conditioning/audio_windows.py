"""Per-frame audio context windows: which feature rows each video (or latent) frame attends to.

Both are pure gathers over per-video-frame features [T, layers, channels]; the two families differ in
what lies beyond the ends of the audio: wav2vec2 families repeat the edge frame, HuMo uses zeros.
"""

import torch

from skyaudio_cli.conditioning.vae import TEMPORAL_STRIDE

HUMO_WINDOW = 8
# HuMo's latent 0 covers one video frame, so of its 8 slots only the last 5 (frames -2..+2) are audio.
_HUMO_FIRST_LATENT_ZEROS = 3
# Latent i >= 1 covers frames 4i-3..4i; its window starts 2 frames of context earlier, at 4i-5.
_HUMO_WINDOW_START = -5


def frame_windows(
    features: torch.Tensor, radius: int = 2, *, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """[stop - start, 2r+1, L, C]: frame i gets frames i-r..i+r, indices clamped to [0, T-1].

    `start`/`stop` select the frames of one generation window while clamping still happens at the
    ends of the whole audio, so windowing slice by slice equals slicing the full result.
    """
    num_frames = features.shape[0]
    stop = num_frames if stop is None else stop
    centres = torch.arange(start, stop, device=features.device)
    offsets = torch.arange(-radius, radius + 1, device=features.device)
    return features[(centres[:, None] + offsets[None]).clamp(0, num_frames - 1)]


def humo_latent_windows(
    features: torch.Tensor, num_latent_frames: int, *, first_frame: int = 0, first_latent: int = 0
) -> torch.Tensor:
    """[num_latent_frames, 8, L, C] as HuMo's `get_audio_emb_window` builds them (its `frame0_idx`).

    With f = first_frame (the feature row of video frame 0): latent 0 gets 3 zero rows then rows
    f-2..f+2; latent i >= 1 gets rows f+4i-5 .. f+4i+2 (its four frames 4i-3..4i plus 2 either side).
    Rows outside [0, T) are zeros. `first_latent` returns latents first_latent.. of the video, so a
    long video's window can pass only the rows it needs (then f = -its first row's frame).
    """
    # Every latent's slots are 8 consecutive frames starting at f+4i-5; for latent 0 that puts
    # frames f-5..f-3 in the first 3 slots, which HuMo blanks.
    latent = torch.arange(first_latent, first_latent + num_latent_frames, device=features.device)[:, None]
    slot = torch.arange(HUMO_WINDOW, device=features.device)[None]
    frame_index = first_frame + TEMPORAL_STRIDE * latent + _HUMO_WINDOW_START + slot
    blanked = (latent == 0) & (slot < _HUMO_FIRST_LATENT_ZEROS)

    # Row 0 of the padded table is the zero row every out-of-range index is sent to.
    padded = torch.cat([features.new_zeros(1, *features.shape[1:]), features])
    use_audio = (frame_index >= 0) & (frame_index < features.shape[0]) & ~blanked
    return padded[torch.where(use_audio, frame_index + 1, 0)]


def humo_window_frames(first_latent: int, stop_latent: int) -> range:
    """The video frames the windows of latents [first_latent, stop_latent) read (not yet cut to the
    audio's frames), so a long video encodes and passes only those."""
    first = TEMPORAL_STRIDE * first_latent + _HUMO_WINDOW_START
    return range(first, TEMPORAL_STRIDE * (stop_latent - 1) + _HUMO_WINDOW_START + HUMO_WINDOW)
