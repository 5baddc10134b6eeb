"""`skyaudio dataset build` and `skyaudio train`: fine-tuning on one's own talking videos.

Model code (torch, accelerate, peft) loads inside the commands, once their arguments are valid.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from skyaudio_cli import console
from skyaudio_cli.cli.options import JsonOpt
from skyaudio_cli.errors import InputError

dataset_app = typer.Typer(no_args_is_help=True, add_completion=False)


@contextmanager
def _progress(description: str, unit: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich bar with ETA on a terminal; without one (Slurm, nohup) a plain line as often as
    generate prints one."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from skyaudio_cli.tasks.render import LOG_PROGRESS_SECONDS

    if not console.stderr.is_terminal:
        last = [None]

        def line(done: int, total: int, note: str) -> None:
            now = time.monotonic()
            if done in (1, total) or last[0] is None or now - last[0] >= LOG_PROGRESS_SECONDS:
                last[0] = now
                console.info(f"{description}: {unit} {done}/{total} {escape(note)}")

        yield line
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} " + unit),
        TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console.stderr) as bar:
        task = bar.add_task(description, total=None, note="")
        yield lambda done, total, note: bar.update(task, completed=done, total=total, note=escape(note))


@dataset_app.command("build", no_args_is_help=True)
def dataset_build(
    videos: Annotated[list[Path], typer.Argument(help="Talking videos (any container ffmpeg reads).")],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Dataset folder (created; reruns resume).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Family or model folder the data is for.")
    ] = "skyreels-v3-a2v",
    clip_frames: Annotated[
        int, typer.Option("--clip-frames", help="Frames per clip (1 + 4k): the longest stage's frames.")
    ] = 81,
    resolution: Annotated[
        list[str] | None,
        typer.Option(
            "--resolution",
            help="480p, 720p or WxH (default: the family's); repeat to cache every clip at each, for "
            "stages at different resolutions.",
        ),
    ] = None,
    caption_model: Annotated[
        str | None,
        typer.Option(
            "--caption-model",
            metavar="NAME|FOLDER",
            help="Caption videos that have no sidecar .txt/.json with this captioner (blip-large, "
            "downloaded on first use, or a BLIP model folder); default: the family's prompt.",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N.")] = "cpu",
    json_output: JsonOpt = False,
) -> None:
    """Cut talking videos into single-face clips and cache their training tensors.

    Example: skyaudio dataset build me/*.mp4 -o data/me --model infinitetalk
    """
    from skyaudio_cli.weights import resolve_model

    for video in videos:
        if not video.is_file():
            raise InputError(f"{video}: video file not found")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"-o {out_dir}: is a file, not a folder")
    from skyaudio_cli.pipeline.buckets import validate_resolution

    resolutions = tuple(dict.fromkeys(resolution or ()))  # each once, in the order given
    for text in resolutions:
        validate_resolution(text)
    resolve_model(model)  # unknown model / weights not downloaded: refused before any model code
    if caption_model is not None:
        from skyaudio_cli.training.captions import captioner_source

        captioner_source(caption_model)  # neither a folder nor a known name: refused before any model code
    from skyaudio_cli.pipeline.library_logs import silence_libraries

    silence_libraries()
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    with _progress("dataset", "videos") as progress:
        options = BuildOptions(
            model=model,
            clip_frames=clip_frames,
            resolutions=resolutions,
            device=device,
            caption_model=caption_model,
        )
        report = build_dataset(
            videos, out_dir, options, on_video=lambda done, total, video: progress(done, total, video.name)
        )
    dropped = [{"video": d.video, "start_frame": d.start_frame, "frames": d.frames, "reason": d.reason}
               for d in report.dropped]  # fmt: skip
    if json_output:
        console.emit_json({"status": "ok", "output": str(out_dir), "clips": report.clips,
                          "new_clips": report.new_clips, "skipped_videos": report.skipped_videos,
                          "dropped": dropped})  # fmt: skip
        return
    for d in dropped:
        console.info(
            f"dropped {escape(d['video'])} frames {d['start_frame']}+{d['frames']}: {escape(d['reason'])}"
        )
    console.info(f"[green]dataset[/] {escape(str(out_dir))}: {report.clips} clips ({report.new_clips} new)")


def train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="Training config (see README).")],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the output's latest checkpoint.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Fine-tune a LoRA (and/or the audio layers) on a built dataset, stage by stage.

    Runs on one process, or under `accelerate launch` / `torchrun` on several GPUs or machines.

    Example: skyaudio train me.toml    (accelerate launch -m skyaudio_cli train me.toml)
    """
    from skyaudio_cli.training.config import load_config

    config = load_config(config_path)
    from skyaudio_cli.training.trainer import check_inputs

    check_inputs(config, resume=resume)  # a bad dataset or output answers before any model loads
    from skyaudio_cli.pipeline.library_logs import silence_libraries

    silence_libraries()
    from skyaudio_cli.training.trainer import Trainer

    trainer = Trainer(config, resume=resume)
    main = trainer.accelerator.is_main_process
    with _progress("training", "steps") as progress:

        def on_step(step: int, total: int, record: dict) -> None:
            if main:
                progress(step, total, f"{record['stage']} loss {record['loss']:.4f}")

        result = trainer.run(on_step)
    if not main:
        return
    if json_output:
        console.emit_json({
            "status": "ok", "lora": str(result.lora), "log": str(result.log), "steps": result.steps,
            "resumed_from": result.resumed_from, "final_loss": result.final_loss,
        })  # fmt: skip
        return
    console.info(
        f"[green]wrote[/] {escape(str(result.lora))} after {result.steps} steps "
        f"(log: {escape(str(result.log))})"
    )
