"""Which source frame each output frame of an edit shows (pure functions, no I/O).

The output follows the new audio. A source shorter than the audio is looped back and forth
(ping-pong: no jump cut where a plain loop would restart) or holds its last frame; a longer one is
trimmed, or with keep_original_audio plays on to its end with the original soundtrack. A video that
`generate` follows (`--reference-mode follow`) is looped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from skyaudio_cli.modes import LoopMode


@dataclass(frozen=True)
class EditTimeline:
    source_indices: list[int]  # per output frame, the source frame it is built from
    edited_frames: int  # the first `edited_frames` output frames carry the new audio and are re-lip-synced

    @property
    def num_frames(self) -> int:
        return len(self.source_indices)


def plan_timeline(
    num_source_frames: int,
    num_audio_frames: int,
    *,
    loop: LoopMode = LoopMode.pingpong,
    keep_original_audio: bool = False,
) -> EditTimeline:
    """The output timeline for a source of `num_source_frames` and new audio of `num_audio_frames`."""
    if num_source_frames < 1 or num_audio_frames < 1:
        raise ValueError(f"need frames, got source={num_source_frames} audio={num_audio_frames}")
    total = max(num_audio_frames, num_source_frames) if keep_original_audio else num_audio_frames
    return EditTimeline(
        source_indices=[loop_index(i, num_source_frames, loop) for i in range(total)],
        edited_frames=num_audio_frames,
    )


def loop_index(i: int, num_source_frames: int, loop: LoopMode) -> int:
    """Source frame for output frame i: the identity inside the source, then ping-pong or freeze."""
    last = num_source_frames - 1
    if i <= last:
        return i
    if loop is LoopMode.freeze or last == 0:
        return last
    phase = i % (2 * last)
    return phase if phase <= last else 2 * last - phase
