"""The generation and runtime options every video command takes, gathered into one `Settings`.

Typer has no option groups, so `takes_settings` adds the shared parameters to a command's
signature (Typer, `--help` and batch manifests read that signature) and hands the command one
`settings` argument built from them. A command declares only what is its own.
"""

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any

from skyaudio_cli.cli.options import (
    Attention,
    AttentionOpt,
    AudioScaleOpt,
    CacheMode,
    CacheOpt,
    CompileOpt,
    Device,
    DeviceOpt,
    DType,
    DTypeOpt,
    FP8Opt,
    FpsOpt,
    KeepPromptOpt,
    LongVideoMode,
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
from skyaudio_cli.jobs import DEFAULT_MAX_AUDIO_SECONDS, DEFAULT_MODEL, Settings

# (Settings field, annotation, default) in --help order; enum values are stored as plain strings.
_SHARED: tuple[tuple[str, Any, Any], ...] = (
    ("prompt", PromptOpt, None),
    ("negative_prompt", NegativePromptOpt, None),
    ("keep_prompt", KeepPromptOpt, False),
    ("model", ModelOpt, DEFAULT_MODEL),
    ("preset", PresetOpt, None),
    ("lora", LoraOpt, ()),
    ("resolution", ResolutionOpt, None),
    ("seed", SeedOpt, 0),
    ("steps", StepsOpt, None),
    ("shift", ShiftOpt, None),
    ("text_scale", TextScaleOpt, None),
    ("audio_scale", AudioScaleOpt, None),
    ("fps", FpsOpt, None),
    ("long_video_mode", LongVideoModeOpt, LongVideoMode.auto),
    ("max_audio_seconds", MaxAudioOpt, DEFAULT_MAX_AUDIO_SECONDS),
    ("device", DeviceOpt, Device.auto),
    ("dtype", DTypeOpt, DType.bf16),
    ("attention", AttentionOpt, Attention.auto),
    ("fp8", FP8Opt, False),
    ("offload", OffloadOpt, False),
    ("compile", CompileOpt, False),
    ("cache", CacheOpt, CacheMode.none),
)


def takes_settings(*, without: tuple[str, ...] = (), **replaced: Any) -> Callable:
    """Give the decorated command the shared options, minus `without`, with some annotations
    `replaced` (e.g. another help text for --fps); it receives them as `settings: Settings`."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "settings"]
        keyword = inspect.Parameter.KEYWORD_ONLY
        shared = [
            inspect.Parameter(name, keyword, default=default, annotation=replaced.get(name, hint))
            for name, hint, default in _SHARED
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
