"""The task registry: what a manifest line's `"task"` names, and how to check and run it.

A task plugs into `skyaudio batch` by registering its job dataclass, its cheap validation, its
runner and the CLI subcommand with the same options (whose declared ranges and choices the manifest
parser reuses, so the command line and manifests accept exactly the same values).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyaudio_cli.errors import InputError, NotAvailableError

# Every task the tool declares; one missing from the registry is "not available yet".
DECLARED_TASKS = ("generate", "edit-lipsync", "extend")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    job_type: type
    validate: Callable[[Any], None]
    # "module:function" taking (job, pipelines=PipelineCache) and returning a result dict; imported
    # when the first job runs, because model code imports torch and validation must stay light.
    run: str
    command: Callable[..., None]
    # Seconds a complete output of the job lasts (None when unknown): how --resume tells a
    # finished output from a stale one.
    expected_seconds: Callable[[Any], float | None]

    def runner(self) -> Callable[..., dict]:
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> None:
    _REGISTRY[spec.name] = spec


def task_spec(name: str) -> TaskSpec:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in DECLARED_TASKS:
        raise NotAvailableError(f'task "{name}" is not available yet in this version')
    raise InputError(f'unknown task "{name}" (use one of: {", ".join(DECLARED_TASKS)})')


def _audio_seconds(audio: Path) -> float:
    from skyaudio_cli.media.audio import audio_duration, open_audio

    with open_audio(audio) as samples:
        return audio_duration(samples)


def _extended_seconds(job) -> float | None:
    """The source video and its continuation; unknown when --fps re-times the source, since the
    source and the continuation then each round to a whole frame."""
    from skyaudio_cli.media.video import probe_video

    if job.append_only:
        return _audio_seconds(job.audio)
    if job.settings.fps is not None:
        return None
    return probe_video(job.video).duration + _audio_seconds(job.audio)


def _register_builtin_tasks() -> None:
    from skyaudio_cli.cli.video_commands import edit_lipsync, extend, generate
    from skyaudio_cli.jobs import (
        EditLipsyncJob,
        ExtendJob,
        GenerateJob,
        validate_edit_lipsync,
        validate_extend,
        validate_generate,
    )

    register(
        TaskSpec(
            name="generate",
            job_type=GenerateJob,
            validate=validate_generate,
            run="skyaudio_cli.pipeline.run:run_generate",
            command=generate,
            # The video lasts as long as its speech (to one frame).
            expected_seconds=lambda job: _audio_seconds(job.audio),
        )
    )
    register(
        TaskSpec(
            name="edit-lipsync",
            job_type=EditLipsyncJob,
            validate=validate_edit_lipsync,
            run="skyaudio_cli.pipeline.run_lipsync:run_edit_lipsync",
            command=edit_lipsync,
            # Follows the new audio, unless the rest of a longer video is kept.
            expected_seconds=lambda job: None if job.keep_original_audio else _audio_seconds(job.audio),
        )
    )
    register(
        TaskSpec(
            name="extend",
            job_type=ExtendJob,
            validate=validate_extend,
            run="skyaudio_cli.pipeline.run:run_extend",
            command=extend,
            expected_seconds=_extended_seconds,
        )
    )


_register_builtin_tasks()
