"""Audio-guided classifier-free guidance.

Four conditions exist: `cond` (text, audio), `drop_text` (negative text, audio), `drop_audio`
(text, zero audio) and `uncond` (negative text, zero audio). Which passes are needed depends on the
two scales; the passes are stacked along the batch axis so one transformer forward serves them all.

A scale of 1 turns its term off, as in both releases. Scales below 1: InfiniteTalk runs the same
formulas with them; SkyReels-V3 runs a term only above 1, so that family refuses them up front
(FamilyDefaults.check_scales) rather than run a formula its release never runs.
"""

from dataclasses import dataclass
from enum import Enum

import torch


class Pass(Enum):
    COND = "cond"
    DROP_TEXT = "drop_text"
    DROP_AUDIO = "drop_audio"
    UNCOND = "uncond"


@dataclass(frozen=True)
class GuidanceScales:
    text: float = 1.0
    audio: float = 1.0

    def passes(self) -> tuple[Pass, ...]:
        """The forward passes these scales need, in batch order."""
        if self.text == 1.0 and self.audio == 1.0:
            return (Pass.COND,)
        if self.text == 1.0:
            # With the text scale at 1 the text term cancels: guide on audio alone, keeping the
            # real prompt in both passes so only the audio differs.
            return (Pass.COND, Pass.DROP_AUDIO)
        if self.audio == 1.0:
            # The audio term of the three-pass formula cancels likewise (SkyReels-V3's text-only case).
            return (Pass.COND, Pass.DROP_TEXT)
        return (Pass.COND, Pass.DROP_TEXT, Pass.UNCOND)


def combine(scales: GuidanceScales, outputs: dict[Pass, torch.Tensor]) -> torch.Tensor:
    """Mix the per-pass velocities into the guided velocity."""
    cond = outputs[Pass.COND]
    passes = scales.passes()
    if passes == (Pass.COND,):
        return cond
    if passes == (Pass.COND, Pass.DROP_AUDIO):
        drop_audio = outputs[Pass.DROP_AUDIO]
        return drop_audio + scales.audio * (cond - drop_audio)
    if passes == (Pass.COND, Pass.DROP_TEXT):
        drop_text = outputs[Pass.DROP_TEXT]
        return drop_text + scales.text * (cond - drop_text)
    drop_text, uncond = outputs[Pass.DROP_TEXT], outputs[Pass.UNCOND]
    return uncond + scales.text * (cond - drop_text) + scales.audio * (drop_text - uncond)
