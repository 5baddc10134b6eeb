"""Fixtures shared by the end-to-end tests: the tiny a2v pipeline around the linear `FastVAE`, and
tiny HuMo models in both release layouts, built once."""

import pytest
from PIL import Image

from .fast_vae import FastVAE


@pytest.fixture(scope="module")
def fast_pipe(tiny_model):
    """The tiny model's pipeline with the linear VAE stand-in (per module: tests patch it)."""
    from skyaudio_cli.pipeline.talking_video import TalkingVideoPipeline

    pipe = TalkingVideoPipeline.from_pretrained(tiny_model, device="cpu", dtype="fp32")
    pipe.vae = FastVAE()
    return pipe


@pytest.fixture(scope="session", params=["humo-17b", "humo-1.7b"])
def humo_model(request, tmp_path_factory):
    from skyaudio_cli.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("humo") / request.param, layout=request.param)


@pytest.fixture(scope="session")
def humo_pipe(humo_model):
    from skyaudio_cli.pipeline.humo import HumoPipeline

    return HumoPipeline.from_pretrained(humo_model, device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def portrait_image(portrait_png):
    return Image.open(portrait_png).convert("RGB")
