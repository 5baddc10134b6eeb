"""The shared generation/runtime options: declared once, the same on every video command."""

import inspect

import pytest
import typer
from typer.testing import CliRunner

from skyaudio_cli.cli.options import FpsOpt
from skyaudio_cli.cli.settings_options import takes_settings
from skyaudio_cli.cli.video_commands import edit_lipsync, extend, generate
from skyaudio_cli.tasks.jobs import Settings


def _run(command, args: list[str]) -> Settings:
    seen = []

    @takes_settings(fps=FpsOpt)
    def probe(name: str = "", *, settings: Settings) -> None:
        seen.append((name, settings))

    app = typer.Typer()
    app.command()(probe)
    app.command("other")(lambda: None)  # two commands, so typer keeps the command name
    result = CliRunner().invoke(app, [command, *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_flags_become_one_settings_object():
    name, settings = _run(
        "probe",
        ["--name", "x", "--prompt", "hi", "-m", "tiny-random", "--resolution", "64x64", "--seed", "3",
         "--steps", "2", "--shift", "5", "--text-scale", "1.5", "--audio-scale", "2", "--fps", "30",
         "--long-video-mode", "fusion", "--max-audio-seconds", "9", "--device", "cpu", "--dtype", "fp32",
         "--attention", "sdpa", "--fp8", "--offload", "--compile", "--cache", "first-block"],
    )  # fmt: skip
    assert name == "x"
    assert settings == Settings(
        model="tiny-random", prompt="hi", resolution="64x64", seed=3, steps=2, shift=5.0, text_scale=1.5,
        audio_scale=2.0, fps=30.0, long_video_mode="fusion", max_audio_seconds=9.0, device="cpu",
        dtype="fp32", attention="sdpa", fp8=True, offload=True, compile=True, cache="first-block",
    )  # fmt: skip
    # Enum choices arrive as plain strings, as batch manifests and the runners expect.
    assert type(settings.device) is str and type(settings.cache) is str


def test_repeated_lora_flags_become_a_tuple_in_order():
    _, settings = _run(
        "probe", ["--lora", "a.safetensors:0.5", "--lora", "o/r/b.safetensors", "--preset", "p"]
    )
    assert settings.lora == ("a.safetensors:0.5", "o/r/b.safetensors") and settings.preset == "p"


def test_defaults_are_the_settings_defaults():
    assert _run("probe", [])[1] == Settings()


def _options(command) -> set[str]:
    return set(inspect.signature(command).parameters)


@pytest.mark.parametrize("command", [generate, edit_lipsync, extend])
def test_every_video_command_takes_the_runtime_and_acceleration_options(command):
    runtime = {"model", "seed", "steps", "device", "dtype", "attention", "fp8", "offload", "compile", "cache"}
    runtime |= {"lora", "preset"}
    assert runtime <= _options(command)
    assert "settings" not in _options(command)


def test_edit_lipsync_has_no_frame_rate_or_chaining_choice():
    # It keeps the source's frame rate and always chains windows by motion frames.
    assert not {"fps", "long_video_mode"} & _options(edit_lipsync)
    assert {"fps", "long_video_mode"} <= _options(generate) & _options(extend)
