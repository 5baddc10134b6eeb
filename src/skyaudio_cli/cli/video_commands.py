"""`generate`, `edit-lipsync` and `extend`: parse flags into jobs, validate, run, report."""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from skyaudio_cli import console
from skyaudio_cli.cli.options import (
    GENERATION,
    AllowNoFaceOpt,
    AudioOpt,
    DebugMaskOpt,
    EditMode,
    EditModeOpt,
    FaceBoxOpt,
    JsonOpt,
    KeepOriginalAudioOpt,
    LoopMode,
    LoopModeOpt,
    MaskVideoOpt,
    OutputOpt,
    OverwriteOpt,
    ReferenceModeOpt,
    VideoOpt,
    finite_float,
)
from skyaudio_cli.cli.settings_options import takes_settings
from skyaudio_cli.tasks.jobs import EditLipsyncJob, ExtendJob, GenerateJob, Settings


@takes_settings()
def generate(
    audio: AudioOpt,
    output_path: OutputOpt,
    portrait: Annotated[
        Path | None,
        typer.Option(
            "--portrait",
            "-p",
            help="Portrait image (png/jpg/webp) or video (see --reference-mode).",
        ),
    ] = None,
    reference_mode: ReferenceModeOpt = None,
    loop_mode: LoopModeOpt = LoopMode.pingpong,
    overwrite: OverwriteOpt = False,
    json_output: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Make a talking video of a portrait speaking the audio (any length).

    Example: skyaudio generate --portrait face.png --audio speech.wav -o talk.mp4
    """
    job = GenerateJob(
        audio=audio, output=output_path, portrait=portrait, overwrite=overwrite,
        reference_mode=reference_mode.value if reference_mode is not None else None,
        loop_mode=loop_mode.value, settings=settings,
    )  # fmt: skip
    _run_task("generate", job, json_output)


@takes_settings(without=EditLipsyncJob.UNUSED_SETTINGS)
def edit_lipsync(
    video: VideoOpt,
    audio: AudioOpt,
    output_path: OutputOpt,
    mode: EditModeOpt = EditMode.mask,
    mask_video: MaskVideoOpt = None,
    face_box: FaceBoxOpt = None,
    debug_mask: DebugMaskOpt = None,
    allow_no_face: AllowNoFaceOpt = False,
    loop_mode: LoopModeOpt = LoopMode.pingpong,
    keep_original_audio: KeepOriginalAudioOpt = False,
    overwrite: OverwriteOpt = False,
    json_output: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Re-lip-sync a video to new audio: only the lower face (default), or the whole frame.

    The output keeps the video's resolution and frame rate and lasts as long as the audio; with
    --mode mask every pixel outside the (feathered) lower-face mask is the original's.

    Example: skyaudio edit-lipsync --video in.mp4 --audio dub.wav -o dubbed.mp4
    """
    job = EditLipsyncJob(
        video=video, audio=audio, output=output_path, overwrite=overwrite, mask_video=mask_video,
        face_box=face_box, debug_mask=debug_mask, allow_no_face=allow_no_face, loop_mode=loop_mode.value,
        keep_original_audio=keep_original_audio, mode=mode.value, settings=settings,
    )  # fmt: skip
    _run_task("edit-lipsync", job, json_output)


@takes_settings(
    fps=Annotated[
        float | None,
        finite_float(
            "fps", help="Output frame rate (default: the input video's).", rich_help_panel=GENERATION
        ),
    ]
)
def extend(
    video: VideoOpt,
    audio: AudioOpt,
    output_path: OutputOpt,
    append_only: Annotated[
        bool, typer.Option("--append-only", help="Write only the new continuation, not the original.")
    ] = False,
    overwrite: OverwriteOpt = False,
    json_output: JsonOpt = False,
    *,
    settings: Settings,
) -> None:
    """Continue a video from its last frames with more audio (any video, any length, any fps).

    Example: skyaudio extend --video talk.mp4 --audio more.wav -o longer.mp4
    """
    job = ExtendJob(
        video=video, audio=audio, output=output_path, append_only=append_only, overwrite=overwrite,
        settings=settings,
    )  # fmt: skip
    _run_task("extend", job, json_output)


def _run_task(task: str, job, json_output: bool) -> None:
    """Resolve `job` (every check that needs no weights, in well under a second), then run it.

    The runner (and torch with it) is imported only once the job is resolved: its inputs valid and
    its model's weights known to be on this machine.
    """
    from skyaudio_cli.pipeline.library_logs import silence_libraries
    from skyaudio_cli.tasks.registry import resolve, task_spec

    resolved = resolve(task, job)
    silence_libraries()
    started = time.monotonic()
    result = task_spec(task).run(resolved)
    from skyaudio_cli.model.parallel import is_main_process

    if not is_main_process():
        return  # under torchrun rank 0 wrote the video and reports it
    result["seconds"] = round(time.monotonic() - started, 3)
    _report(result, json_output)


def _report(result: dict, json_output: bool) -> None:
    if json_output:
        console.emit_json({"status": "ok", **result})
    else:
        console.info(
            f"[green]wrote[/] {escape(result['output'])} ({result['frames']} frames, "
            f"{result['duration_s']:.2f} s at {result['fps']:g} fps) in {result['seconds']:.1f} s"
        )
