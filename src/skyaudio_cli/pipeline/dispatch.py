"""Which pipeline class runs a model: HuMo's for the HuMo architectures, the a2v one otherwise."""

from skyaudio_cli.pipeline.family import Architecture
from skyaudio_cli.pipeline.humo import HumoPipeline
from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

PipelineClass = type[TalkingVideoPipeline] | type[HumoPipeline]


def pipeline_for(architecture: Architecture) -> PipelineClass:
    """The class whose ``from_pretrained`` loads a family of `architecture`."""
    return HumoPipeline if architecture.is_humo else TalkingVideoPipeline
