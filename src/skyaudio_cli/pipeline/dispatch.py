"""Which pipeline class runs a model: HuMo's for the humo architecture, the a2v one otherwise."""

from skyaudio_cli.pipeline.family import family_defaults
from skyaudio_cli.pipeline.humo import HumoPipeline
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline


def pipeline_class(model: str) -> type[TalkingVideoPipeline]:
    """The class whose ``from_pretrained`` loads `model` (a manifest name or a local model folder)."""
    from skyaudio_cli.weights import resolve_model

    architecture = family_defaults(resolve_model(model).family).architecture
    return HumoPipeline if architecture == "humo" else TalkingVideoPipeline
