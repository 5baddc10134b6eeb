import torch

from skyaudio_cli.sampling.guidance import GuidanceScales, Pass, combine


def _outputs():
    return {p: torch.full((2,), float(i + 1)) for i, p in enumerate(Pass)}


def test_single_pass_when_both_scales_are_one():
    scales = GuidanceScales(1.0, 1.0)
    assert scales.passes() == (Pass.COND,)
    out = _outputs()
    assert torch.equal(combine(scales, out), out[Pass.COND])


def test_audio_only_guidance_uses_text_with_zero_audio():
    scales = GuidanceScales(text=1.0, audio=4.0)
    assert scales.passes() == (Pass.COND, Pass.DROP_AUDIO)
    out = _outputs()
    expected = out[Pass.DROP_AUDIO] + 4.0 * (out[Pass.COND] - out[Pass.DROP_AUDIO])
    assert torch.equal(combine(scales, out), expected)


def test_three_pass_formula():
    scales = GuidanceScales(text=5.0, audio=4.0)
    assert scales.passes() == (Pass.COND, Pass.DROP_TEXT, Pass.UNCOND)
    cond, drop_text, uncond = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    out = combine(scales, {Pass.COND: cond, Pass.DROP_TEXT: drop_text, Pass.UNCOND: uncond})
    assert out.item() == 0.5 + 5.0 * (3.0 - 2.0) + 4.0 * (2.0 - 0.5)


def test_text_only_guidance_drops_the_text_and_keeps_the_audio():
    # SkyReels-V3's "text > 1, audio not": drop_text + s_t (cond - drop_text), two passes; it is
    # also the three-pass formula at audio scale 1.
    scales = GuidanceScales(text=3.0, audio=1.0)
    assert scales.passes() == (Pass.COND, Pass.DROP_TEXT)
    cond, drop_text = torch.tensor([3.0]), torch.tensor([2.0])
    out = combine(scales, {Pass.COND: cond, Pass.DROP_TEXT: drop_text})
    assert out.item() == 2.0 + 3.0 * (3.0 - 2.0) == 0.5 + 3.0 * (3.0 - 2.0) + 1.0 * (2.0 - 0.5)
