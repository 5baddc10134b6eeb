"""Mistakes that need no model are refused before torch/diffusers/transformers are imported.

Each case runs the CLI in a fresh interpreter (as a user's shell does) and reports, at exit, which
heavy modules that process imported. The times are in bench/RESULTS.md (bench/error_latency.py).
"""

import os
import subprocess
import sys

import pytest

from skyaudio_cli.pipeline.preflight import cuda_unavailable_reason, importable

HEAVY = ("torch", "diffusers", "transformers")
# Runs `skyaudio ARGS` and prints, even when it exits, the heavy modules it imported.
PROBE = (
    "import sys\nfrom skyaudio_cli.cli.app import main\n"
    "try:\n    main(sys.argv[1:])\nfinally:\n"
    f"    print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
)


def skyaudio(*args, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, the error lines, the heavy modules imported) of one CLI run."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    *lines, heavy = done.stderr.strip().splitlines()
    return done.returncode, "\n".join(line for line in lines if line.startswith("error: ")), heavy


@pytest.fixture(scope="module")
def generate(tmp_path_factory, portrait_png, speech_wav):
    """`generate(*extra)`: a valid generate command line plus `extra` (later options win)."""
    out = tmp_path_factory.mktemp("out") / "o.mp4"
    return lambda *extra: ["generate", "-p", portrait_png, "-a", speech_wav, "-o", out, *extra]


def assert_refused_without_heavy_imports(result, code: int, *needles: str) -> None:
    exit_code, error, heavy = result
    assert exit_code == code, error
    assert error.count("\n") == 0 and error, error
    for needle in needles:
        assert needle in error
    assert heavy == "HEAVY=", f"imported {heavy} before refusing: {error}"


def test_unknown_model_name(generate):
    result = skyaudio(*generate("-m", "nosuch"))
    assert_refused_without_heavy_imports(result, 2, "unknown model 'nosuch'", "skyreels-v3-a2v")


def test_missing_model_folder(generate, tmp_path):
    result = skyaudio(*generate("-m", tmp_path / "no-model"))
    assert_refused_without_heavy_imports(result, 2, "no-model", "does not exist")


def test_weights_not_downloaded(generate, tmp_path):
    empty_cache = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    result = skyaudio(*generate("-m", "skyreels-v3-a2v"), env=empty_cache)
    assert_refused_without_heavy_imports(result, 3, "skyaudio weights fetch skyreels-v3-a2v", "GB")


def test_device_cuda_without_a_gpu(generate, tiny_model):
    # An empty CUDA_VISIBLE_DEVICES hides every GPU, so this holds on GPU machines too.
    result = skyaudio(*generate("-m", tiny_model, "--device", "cuda"), env={"CUDA_VISIBLE_DEVICES": ""})
    assert_refused_without_heavy_imports(result, 2, "--device cuda", "CUDA_VISIBLE_DEVICES")


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="this machine may have a GPU")
def test_device_cuda_on_this_gpu_less_machine(generate, tiny_model):
    result = skyaudio(*generate("-m", tiny_model, "--device", "cuda"))
    assert_refused_without_heavy_imports(result, 2, "--device cuda: no CUDA GPU", cuda_unavailable_reason())


@pytest.mark.skipif(importable("xformers"), reason="xformers is installed here")
def test_xformers_not_installed(generate, tiny_model):
    result = skyaudio(*generate("-m", tiny_model, "--attention", "xformers"))
    assert_refused_without_heavy_imports(result, 2, "--attention xformers", "not installed", "install-cuda")


def test_fp16_on_a_machine_without_gpu(generate, tiny_model):
    result = skyaudio(*generate("-m", tiny_model, "--dtype", "fp16"), env={"CUDA_VISIBLE_DEVICES": "-1"})
    assert_refused_without_heavy_imports(result, 2, "--dtype fp16", "not supported on CPU")


def test_image_given_as_audio(tmp_path, portrait_png, tiny_model):
    out = tmp_path / "o.mp4"
    result = skyaudio("generate", "-p", portrait_png, "-a", portrait_png, "-o", out, "-m", tiny_model)
    assert_refused_without_heavy_imports(result, 2, "no audio stream", portrait_png.name)


def test_text_given_as_portrait(tmp_path, speech_wav, tiny_model):
    fake = tmp_path / "face.png"
    fake.write_text("not a png")
    result = skyaudio("generate", "-p", fake, "-a", speech_wav, "-o", tmp_path / "o.mp4", "-m", tiny_model)
    assert_refused_without_heavy_imports(result, 2, "not an image", "face.png")


@pytest.mark.parametrize("command", ["extend", "edit-lipsync"])
def test_audio_given_as_video(command, tmp_path, speech_wav, tiny_model):
    result = skyaudio(command, "-v", speech_wav, "-a", speech_wav, "-o", tmp_path / "o.mp4", "-m", tiny_model)
    assert_refused_without_heavy_imports(result, 2, "no video stream", speech_wav.name)


def test_make_tiny_into_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("x")
    result = skyaudio("weights", "make-tiny", tmp_path)
    assert_refused_without_heavy_imports(result, 2, "not empty")
    assert [path.name for path in tmp_path.iterdir()] == ["something"]


@pytest.fixture(scope="module")
def humo_folder(tmp_path_factory):
    from skyaudio_cli.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("humo") / "humo", layout="humo-1.7b")


def test_extend_with_humo_is_refused_before_any_model_code(humo_folder, face_video, speech_wav, tmp_path):
    result = skyaudio(
        "extend", "-v", face_video, "-a", speech_wav, "-o", tmp_path / "o.mp4", "-m", humo_folder
    )
    assert_refused_without_heavy_imports(result, 2, "cannot continue a video")


def test_edit_lipsync_with_humo_is_refused_before_any_model_code(
    humo_folder, face_video, speech_wav, tmp_path
):
    args = ("edit-lipsync", "-v", face_video, "-a", speech_wav, "-o", tmp_path / "o.mp4", "-m", humo_folder)
    assert_refused_without_heavy_imports(skyaudio(*args), 2, "conditioned on a reference image")


def test_edit_lipsync_without_weights_is_refused_before_tracking_faces(face_video, speech_wav, tmp_path):
    empty_cache = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    args = ("edit-lipsync", "-v", face_video, "-a", speech_wav, "-o", tmp_path / "o.mp4")
    # Faces are tracked by the runner, which imports torch: no torch, no tracking.
    result = skyaudio(*args, env=empty_cache)
    assert_refused_without_heavy_imports(result, 3, "skyaudio weights fetch skyreels-v3-a2v")
