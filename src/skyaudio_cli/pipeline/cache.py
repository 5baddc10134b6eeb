"""Loaded pipelines kept for reuse, so many jobs in one process load each model once."""

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from skyaudio_cli.model.acceleration import Acceleration
from skyaudio_cli.pipeline.base import VideoPipeline
from skyaudio_cli.pipeline.dispatch import PipelineClass


@dataclass(frozen=True)
class PipelineKey:
    model: str
    device: str
    dtype: str
    attention: str
    acceleration: Acceleration = Acceleration()


class PipelineCache:
    """Holds at most `capacity` loaded pipelines; loading a new one evicts the oldest first."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        # Seconds spent loading so far: batch results report which job paid for a model load.
        self.load_seconds = 0.0
        self._loaded: dict[PipelineKey, VideoPipeline] = {}

    def get(
        self,
        key: PipelineKey,
        pipeline_class: PipelineClass,
        on_load: Callable[[str], None] | None = None,
        loras: tuple[tuple[Path, float], ...] = (),
    ) -> VideoPipeline:
        """The loaded pipeline for `key`, loaded now if need be by `pipeline_class` (the family's, from
        ``dispatch.pipeline_for``) with `loras` (file, scale) fused into the transformer while it loads
        (a cached pipeline keeps the LoRAs it has: the caller sets them with `use_family` / `use_loras`)."""
        if key not in self._loaded:
            # Evict before loading: two 19B models do not fit side by side on one GPU.
            while len(self._loaded) >= self.capacity:
                self._loaded.pop(next(iter(self._loaded)))
                release_memory()
            started = time.monotonic()
            self._loaded[key] = pipeline_class.from_pretrained(
                key.model, device=key.device, dtype=key.dtype, attention=key.attention,
                acceleration=key.acceleration, on_load=on_load, loras=loras,
            )  # fmt: skip
            self.load_seconds += time.monotonic() - started
        return self._loaded[key]

    def clear(self) -> None:
        self._loaded.clear()
        release_memory()


def release_memory() -> None:
    """Return freed tensors' memory to the system/driver (after an eviction or an OOM)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
