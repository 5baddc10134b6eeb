"""Which pipeline class runs a model: HuMo's for the HuMo architectures, the a2v one otherwise."""

from skyaudio_cli.pipeline.family import Architecture, family_defaults
from skyaudio_cli.pipeline.humo import HumoPipeline
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

PipelineClass = type[TalkingVideoPipeline] | type[HumoPipeline]


def pipeline_for(architecture: Architecture) -> PipelineClass:
    """The class whose ``from_pretrained`` loads a family of `architecture`."""
    return HumoPipeline if architecture.is_humo else TalkingVideoPipeline


def pipeline_class(model: str) -> PipelineClass:
    """The class for `model` (a manifest name or a local model folder), for callers that hold only
    its name (``PipelineCache``)."""
    from skyaudio_cli.weights import resolve_model

    return pipeline_for(family_defaults(resolve_model(model).family).variant)
