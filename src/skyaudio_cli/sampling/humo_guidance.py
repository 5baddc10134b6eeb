"""HuMo's classifier-free guidance over text (T), reference image (I) and audio (A), as released.

A pass is a `Condition`: which of the three inputs the model sees (a dropped text is the negative
prompt, a dropped image the model's "no reference" input, a dropped audio zero features). Which
passes a step needs and how they mix depends on the mode and the model size:

- text + audio (no portrait), both sizes: ``null + s_t (t - null) + s_a (ta - t)``
- text + image + audio, humo-17b: while t > switch ``i + s_t (ti - i) + s_a (tia - ti)``, after it
  ``null + (s_t - 2) (ti - null) + s_a (tia - ti)`` (3 passes per step, 4 conditions in all)
- text + image + audio, humo-1.7b (no switch): ``null + s_t (t - null) + s_a (ta - t) + s_i (tia - ta)``

The pipeline stacks a step's passes along the batch axis, so one transformer forward serves them.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Condition:
    text: bool
    image: bool
    audio: bool


NULL = Condition(text=False, image=False, audio=False)
T = Condition(text=True, image=False, audio=False)
TA = Condition(text=True, image=False, audio=True)
I = Condition(text=False, image=True, audio=False)  # noqa: E741 - the release's name for this pass
TI = Condition(text=True, image=True, audio=False)
TIA = Condition(text=True, image=True, audio=True)


@dataclass(frozen=True)
class HumoGuidance:
    text: float
    audio: float
    image: float = 1.0
    with_image: bool = True
    # humo-17b's timestep above which the image-only pass is the baseline; None for humo-1.7b.
    switch_timestep: float | None = None

    def conditions(self, t: float) -> tuple[Condition, ...]:
        """The passes step ``t`` needs, in batch order."""
        if not self.with_image:
            return (TA, T, NULL)
        if self.switch_timestep is None:
            return (TIA, TA, T, NULL)
        return (TIA, TI, I) if t > self.switch_timestep else (TIA, TI, NULL)

    def combine(self, t: float, outputs: dict[Condition, torch.Tensor]) -> torch.Tensor:
        """The guided velocity of step ``t`` from its passes' outputs."""
        o = outputs
        if not self.with_image:
            return o[NULL] + self.text * (o[T] - o[NULL]) + self.audio * (o[TA] - o[T])
        if self.switch_timestep is None:
            return (
                o[NULL]
                + self.text * (o[T] - o[NULL])
                + self.audio * (o[TA] - o[T])
                + self.image * (o[TIA] - o[TA])
            )
        audio_term = self.audio * (o[TIA] - o[TI])
        if t > self.switch_timestep:
            return o[I] + self.text * (o[TI] - o[I]) + audio_term
        return o[NULL] + (self.text - 2.0) * (o[TI] - o[NULL]) + audio_term
