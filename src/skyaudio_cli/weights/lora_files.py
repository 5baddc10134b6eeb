"""`--lora PATH_OR_HUB_FILE[:SCALE]`: which LoRA file a user means, checked cheaply, then located.

A local path is used when it exists (or is plainly a path: absolute, `./`, `~`, or fewer than three
parts). Otherwise ``owner/name[@revision]/path/in/repo.safetensors`` is a file on the Hugging Face
Hub, fetched into the Hugging Face cache like every other weight (revision "main" unless given) and
found there offline afterwards. Only safetensors are loaded; pickle-based files are refused here
by their name and by the loader by their content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from skyaudio_cli.errors import InputError, WeightsError
from skyaudio_cli.weights.manifest import MAIN_BRANCH, ComponentSpec

# Pickle-based formats: never unpickled (they can run code); convert them to safetensors.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
_SCALE = re.compile(r"^(?P<source>.+):(?P<scale>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$")
_HUB_FILE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+?)(@(?P<revision>[\w.-]+))?/(?P<path>.+)$")


@dataclass(frozen=True)
class LoraRef:
    """One ``--lora`` value: where the file is, and its scale."""

    source: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> LoraRef:
        match = _SCALE.match(text)
        if match is None:
            return cls(text, 1.0)
        return cls(match["source"], float(match["scale"]))

    @property
    def hub_file(self) -> ComponentSpec | None:
        """The Hub file this names (as a one-file component), or None for a local path."""
        text = self.source
        if text.startswith(("/", ".", "~")) or Path(text).expanduser().exists():
            return None
        match = _HUB_FILE.match(text)
        if match is None:
            return None
        folder, _, name = match["path"].rpartition("/")
        return ComponentSpec(
            name="lora", repo=match["repo"], revision=match["revision"] or MAIN_BRANCH, subfolder=folder,
            patterns=(name,), exclude=(), size_bytes=0, format="original", sha256={},
        )  # fmt: skip

    def validate(self) -> None:
        """Before any model loads: a local file exists and is not a pickle; a Hub file names a file."""
        name = self.source.rsplit("/", 1)[-1]
        if Path(name).suffix.lower() in PICKLE_SUFFIXES:
            raise WeightsError(
                f"--lora {self.source}: pickle-based files are never loaded (they can run code); convert "
                "it to .safetensors"
            )
        if self.hub_file is not None:
            return
        path = Path(self.source).expanduser()
        if not path.exists():
            raise InputError(f"--lora {self.source}: file not found (nor an owner/name/file on the Hub)")
        if not path.is_file():
            raise InputError(f"--lora {self.source}: not a file")

    def local_path(self, cache_dir: Path | None = None, endpoint: str | None = None) -> Path:
        """The file on disk, downloading a Hub file into the cache first if it is not there
        (`cache_dir` / `endpoint` default to HF_HUB_CACHE / HF_ENDPOINT)."""
        from skyaudio_cli.weights import hub

        component = self.hub_file
        if component is None:
            return Path(self.source).expanduser()
        return hub.ensure_component(
            component, what=f"--lora {self.source}", cache_dir=cache_dir, endpoint=endpoint
        )
