"""The generation and runtime options every video command takes, gathered into one `Settings`.

Typer has no option groups, so `takes_settings` adds the shared parameters to a command's
signature (Typer, `--help` and batch manifests read that signature) and hands the command one
`settings` argument built from them. A command declares only what is its own.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any

from skyaudio_cli.cli.options import (
    AttentionOpt,
    AudioScaleOpt,
    CacheOpt,
    CompileOpt,
    DeviceOpt,
    DTypeOpt,
    FP8Opt,
    FpsOpt,
    KeepPromptOpt,
    LongVideoModeOpt,
    LoraOpt,
    MaxAudioOpt,
    ModelOpt,
    NegativePromptOpt,
    OffloadOpt,
    PresetOpt,
    PromptOpt,
    ResolutionOpt,
    SeedOpt,
    ShiftOpt,
    StepsOpt,
    TextScaleOpt,
)
from skyaudio_cli.tasks.jobs import Settings

# Settings field -> its option, in --help order; the defaults are the fields' own.
_OPTIONS: dict[str, Any] = {
    "prompt": PromptOpt,
    "negative_prompt": NegativePromptOpt,
    "keep_prompt": KeepPromptOpt,
    "model": ModelOpt,
    "preset": PresetOpt,
    "lora": LoraOpt,
    "resolution": ResolutionOpt,
    "seed": SeedOpt,
    "steps": StepsOpt,
    "shift": ShiftOpt,
    "text_scale": TextScaleOpt,
    "audio_scale": AudioScaleOpt,
    "fps": FpsOpt,
    "long_video_mode": LongVideoModeOpt,
    "max_audio_seconds": MaxAudioOpt,
    "device": DeviceOpt,
    "dtype": DTypeOpt,
    "attention": AttentionOpt,
    "fp8": FP8Opt,
    "offload": OffloadOpt,
    "compile": CompileOpt,
    "cache": CacheOpt,
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


def takes_settings(*, without: tuple[str, ...] = (), **replaced: Any) -> Callable:
    """Give the decorated command the shared options, minus `without`, with some annotations
    `replaced` (e.g. another help text for --fps); it receives them as `settings: Settings`."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "settings"]
        keyword = inspect.Parameter.KEYWORD_ONLY
        shared = [
            inspect.Parameter(name, keyword, default=_DEFAULTS[name], annotation=replaced.get(name, hint))
            for name, hint in _OPTIONS.items()
            if name not in without
        ]
        by_position = [p.replace(kind=keyword) for p in own]

        @functools.wraps(command)
        def with_settings(**values: Any) -> None:
            chosen = {p.name: values.pop(p.name) for p in shared}
            settings = Settings(**{k: _stored(v) for k, v in chosen.items()})
            command(settings=settings, **values)

        parameters = [*by_position, *shared]
        with_settings.__signature__ = inspect.Signature(parameters)
        with_settings.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_settings

    return decorate


def _stored(value: Any) -> Any:
    """Enums as their plain values, repeated options (None when not given) as a tuple."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return tuple(value)
    return value
