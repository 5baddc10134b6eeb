"""Validation videos during training: every N steps a short `generate` of a held-out portrait + speech
with the model as it is now (base + the LoRA / audio layers being trained, unfused), written as
`validation-NNNNNNN.mp4` in the output folder.

The pipeline is `generate`'s own for the family (`pipeline_for`: TalkingVideoPipeline, or HumoPipeline
for HuMo, which renders with the portrait as its reference) around the model being trained, with the
family's encoders loaded once on the training device; only the main process renders.
"""

from pathlib import Path

import torch
from PIL import Image

from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
from skyaudio_cli.media.audio import load_audio, normalize_loudness
from skyaudio_cli.media.video_writer import VideoWriter
from skyaudio_cli.pipeline.dispatch import pipeline_for
from skyaudio_cli.training.config import ValidationConfig
from skyaudio_cli.training.dataset import Encoders


def validation_path(output: Path, step: int) -> Path:
    return output / f"validation-{step:07d}.mp4"


class Validator:
    def __init__(self, config: ValidationConfig, model_name: str, resolution: str, device: torch.device,
                 dtype: torch.dtype) -> None:  # fmt: skip
        self.config = config
        self.resolution = resolution
        self.encoders = Encoders(model_name, str(device))
        self.device, self.dtype = device, dtype
        self.portrait = Image.open(config.portrait).convert("RGB")
        speech = load_audio(config.audio, SAMPLE_RATE)
        lufs = self.encoders.defaults.loudness_lufs
        self.speech = speech if lufs is None else normalize_loudness(speech, SAMPLE_RATE, target_lufs=lufs)

    @torch.no_grad()
    def render(self, model: torch.nn.Module, output: Path, step: int) -> Path:
        enc = self.encoders
        was_training = model.training
        model.eval()
        image = {} if enc.image is None else {"image_encoder": enc.image}
        pipe = pipeline_for(enc.defaults.variant)(
            transformer=model, vae=enc.vae, text_encoder=enc.text, audio_encoder=enc.audio,
            defaults=enc.defaults, device=self.device, dtype=self.dtype, **image,
        )  # fmt: skip
        video = pipe(portrait=self.portrait, audio=self.speech, prompt=self.config.prompt,
                     resolution=self.resolution, steps=self.config.steps, seed=0)  # fmt: skip
        model.train(was_training)
        path = validation_path(output, step)
        height, width = video.frames.shape[1:3]
        with VideoWriter(
            path, fps=video.fps, width=width, height=height, audio=self.speech, overwrite=True
        ) as out:
            out.write(video.frames)
        return path
