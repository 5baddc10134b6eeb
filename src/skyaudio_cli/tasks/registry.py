"""The task registry: what a CLI subcommand or a manifest line's `"task"` names, and how to check and
run it. Both the CLI and `skyaudio batch` go through it (docs/architecture.md).

The runners import torch and the model code, so each is reached through a small function here that
imports it on the first call: validation stays light, and the call is still a plain function call.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyaudio_cli.errors import InputError, NotAvailableError
from skyaudio_cli.tasks.jobs import (
    EditLipsyncJob,
    ExtendJob,
    GenerateJob,
    validate_edit_lipsync,
    validate_extend,
    validate_generate,
)
from skyaudio_cli.tasks.resolve import ResolvedJob, resolve_validated

# Every task the tool declares; one missing from the registry is "not available yet".
DECLARED_TASKS = ("generate", "edit-lipsync", "extend")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    job_type: type
    validate: Callable[[Any], None]
    # (ResolvedJob, pipelines: PipelineCache | None) -> the result dict.
    run: Callable[..., dict]
    # Seconds a complete output of the job lasts (None when unknown): how --resume tells a
    # finished output from a stale one.
    expected_seconds: Callable[[Any], float | None]


def task_spec(name: str) -> TaskSpec:
    if name in TASKS:
        return TASKS[name]
    if name in DECLARED_TASKS:
        raise NotAvailableError(f'task "{name}" is not available yet in this version')
    raise InputError(f'unknown task "{name}" (use one of: {", ".join(DECLARED_TASKS)})')


def resolve(task: str, job: Any) -> ResolvedJob:
    """Validate `job` (a `task` job), find its model's files and check it against the family."""
    task_spec(task).validate(job)
    return resolve_validated(task, job)


def _run_generate(resolved, pipelines=None) -> dict:
    from skyaudio_cli.tasks.generate import run_generate

    return run_generate(resolved, pipelines)


def _run_extend(resolved, pipelines=None) -> dict:
    from skyaudio_cli.tasks.generate import run_extend

    return run_extend(resolved, pipelines)


def _run_edit_lipsync(resolved, pipelines=None) -> dict:
    from skyaudio_cli.tasks.edit_lipsync import run_edit_lipsync

    return run_edit_lipsync(resolved, pipelines)


def _audio_seconds(audio: Path) -> float:
    from skyaudio_cli.media.audio import audio_duration, open_audio

    with open_audio(audio) as samples:
        return audio_duration(samples)


def _extended_seconds(job: ExtendJob) -> float | None:
    """The source video and its continuation; unknown when --fps re-times the source, since the
    source and the continuation then each round to a whole frame."""
    from skyaudio_cli.media.video import probe_video

    if job.append_only:
        return _audio_seconds(job.audio)
    if job.settings.fps is not None:
        return None
    return probe_video(job.video).duration + _audio_seconds(job.audio)


TASKS = {
    spec.name: spec
    for spec in (
        # The video lasts as long as its speech (to one frame).
        TaskSpec(
            "generate", GenerateJob, validate_generate, _run_generate, lambda job: _audio_seconds(job.audio)
        ),
        # Follows the new audio, unless the rest of a longer video is kept.
        TaskSpec(
            "edit-lipsync", EditLipsyncJob, validate_edit_lipsync, _run_edit_lipsync,
            lambda job: None if job.keep_original_audio else _audio_seconds(job.audio),
        ),
        TaskSpec("extend", ExtendJob, validate_extend, _run_extend, _extended_seconds),
    )
}  # fmt: skip
