"""Captions of training videos: a sidecar file, else an image-captioning model if one is asked for
(`dataset build --caption-model`), else the family's default prompt.

The captioner is a BLIP captioning model in transformers layout: a `[captioners.<name>]` entry of
weights.toml, downloaded into the Hugging Face cache on first use like every other component, or a
local folder. It captions one frame per video (the middle one: past any fade-in, and the clips
around it share its scene), greedily, so the same video always gets the same caption. Only
safetensors weights are read.
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights.manifest import ComponentSpec

CAPTION_SIDECARS = (".txt", ".json")
MAX_CAPTION_TOKENS = 40  # BLIP's captions are one sentence; this bounds a degenerate one


def caption_for(video: Path, default: str, model_caption: Callable[[], str] | None = None) -> str:
    """The sidecar `video.txt` (its text) or `video.json` (its "caption" or "prompt"), else
    `model_caption()` (the captioner on the video, when one is given), else `default`."""
    text_file, json_file = (video.with_suffix(suffix) for suffix in CAPTION_SIDECARS)
    if text_file.is_file():
        caption = text_file.read_text(encoding="utf-8").strip()
        if caption:
            return caption
    if json_file.is_file():
        try:
            data = json.loads(json_file.read_text(encoding="utf-8"))
        except ValueError as error:
            raise InputError(f"{json_file}: not valid JSON ({error})") from error
        caption = data.get("caption") or data.get("prompt") if isinstance(data, dict) else None
        if not isinstance(caption, str) or not caption.strip():
            raise InputError(f'{json_file}: expected {{"caption": "..."}}')
        return caption.strip()
    if model_caption is not None:
        caption = model_caption().strip()
        if caption:
            return caption
    return default


def captioner_source(name_or_folder: str) -> Path | ComponentSpec:
    """What `--caption-model` names, checked without loading or downloading anything: a model folder,
    or weights.toml's captioner of that name (InputError for neither)."""
    from skyaudio_cli.weights import get_manifest

    folder = Path(name_or_folder).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise InputError(f"--caption-model {name_or_folder}: no config.json in that folder")
        return folder
    return get_manifest().captioner(name_or_folder)


def captioner_folder(name_or_folder: str) -> Path:
    """The captioner's files: a model folder as given, or weights.toml's captioner of that name from
    the Hugging Face cache (downloaded there first if need be)."""
    from skyaudio_cli.weights import hub

    source = captioner_source(name_or_folder)
    if isinstance(source, Path):
        return source
    return hub.ensure_component(source, what=f"--caption-model {name_or_folder}")


class Captioner:
    """A BLIP captioning model on `device`; `caption(frame)` for a uint8 [H, W, 3] frame."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        import torch
        from transformers import AutoConfig, BlipForConditionalGeneration, BlipProcessor

        if AutoConfig.from_pretrained(folder).model_type != "blip":
            raise WeightsError(
                f"--caption-model {folder}: not a BLIP captioning model (config.json model_type)"
            )
        if not any(folder.glob("*.safetensors")):
            raise WeightsError(
                f"--caption-model {folder}: no .safetensors weights (pickles are never loaded)"
            )
        self.device = torch.device(device)
        self.processor = BlipProcessor.from_pretrained(folder)
        self.model = BlipForConditionalGeneration.from_pretrained(folder, use_safetensors=True)
        self.model.to(self.device).eval()

    def caption(self, frame: np.ndarray) -> str:
        import torch
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(frame), return_tensors="pt").to(self.device)
        with torch.no_grad():
            tokens = self.model.generate(**inputs, max_new_tokens=MAX_CAPTION_TOKENS, do_sample=False)
        return self.processor.decode(tokens[0], skip_special_tokens=True)
