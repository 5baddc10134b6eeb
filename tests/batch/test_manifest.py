"""Manifest lines -> jobs, and the planning every line goes through before any model loads."""

import json
from pathlib import Path

import pytest

from skyaudio_cli.batch.manifest import ManifestLine, parse_line, read_manifest
from skyaudio_cli.batch.plan import plan_batch
from skyaudio_cli.errors import EXIT_NOT_AVAILABLE, EXIT_USAGE, InputError, NotAvailableError
from skyaudio_cli.tasks.jobs import GenerateJob, Settings


def parse(fields: dict) -> GenerateJob:
    return parse_line(ManifestLine(number=7, index=0, text=json.dumps(fields))).job


BASE = {"task": "generate", "audio": "a.wav", "output": "o.mp4"}


def test_flat_and_nested_settings_give_the_same_job():
    flat = parse({**BASE, "portrait": "a.png", "seed": 3, "steps": 4, "model": "tiny-folder", "fps": 30})
    nested = parse(
        {**BASE, "portrait": "a.png", "settings": {"seed": 3, "steps": 4, "model": "tiny-folder"}, "fps": 30}
    )
    assert (
        flat
        == nested
        == GenerateJob(
            audio=Path("a.wav"),
            output=Path("o.mp4"),
            portrait=Path("a.png"),
            settings=Settings(model="tiny-folder", seed=3, steps=4, fps=30.0),
        )
    )
    assert isinstance(flat.settings.fps, float)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bogus": 1}, 'unknown key "bogus"'),
        ({"settings": {"bogus": 1}}, 'unknown key "bogus"'),
        ({"seed": 3.5}, '"seed": expected an integer'),
        ({"seed": True}, '"seed": expected an integer'),
        ({"overwrite": "yes"}, '"overwrite": expected true/false'),
        ({"audio": None}, '"audio": must not be null'),
        ({"steps": 0}, '"steps"'),  # the range `generate --steps` declares
        ({"seed": -1}, '"seed"'),
        ({"dtype": "fp64"}, "'fp64' is not one of"),  # the choices `--dtype` declares
        ({"fps": 500}, '"fps"'),
        ({"seed": 1, "settings": {"seed": 2}}, '"seed" is given both flat and inside "settings"'),
        ({"lora": "style.safetensors"}, '"lora": expected a list of strings, got a string'),
        ({"lora": ["a.safetensors", 2]}, '"lora": expected a list of strings, got a list'),
    ],
)
def test_bad_fields_name_the_key(fields, message):
    with pytest.raises(InputError, match=message):
        parse({**BASE, **fields})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"task": "generate",', "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got a list"),
        ('{"audio": "a.wav"}', 'missing "task"'),
        ('{"task": "dance", "audio": "a.wav"}', 'unknown task "dance"'),
        ('{"task": "generate", "output": "o.mp4"}', 'missing "audio"'),
    ],
)
def test_bad_lines_are_input_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_line(ManifestLine(1, 0, text))


def test_loras_and_preset_are_settings():
    job = parse(
        {**BASE, "lora": ["a.safetensors:0.5", "org/repo/b.safetensors"], "settings": {"preset": "fast"}}
    )
    assert (
        job.settings.lora == ("a.safetensors:0.5", "org/repo/b.safetensors") and job.settings.preset == "fast"
    )
    assert parse(BASE).settings.lora == ()


def test_declared_but_unregistered_task_is_not_available(monkeypatch):
    from skyaudio_cli.tasks import registry

    monkeypatch.delitem(registry.TASKS, "extend", raising=False)
    with pytest.raises(NotAvailableError, match='task "extend" is not available yet') as failure:
        parse({**BASE, "task": "extend"})
    assert failure.value.exit_code == EXIT_NOT_AVAILABLE


def test_blank_lines_keep_numbers_but_not_indices(tmp_path):
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text('{"a": 1}\n\n   \n{"b": 2}\n')
    assert read_manifest(str(manifest)) == [ManifestLine(1, 0, '{"a": 1}'), ManifestLine(4, 1, '{"b": 2}')]


def test_missing_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl: file not found"):
        read_manifest(str(tmp_path / "nope.jsonl"))


def lines_of(*objects) -> list[ManifestLine]:
    return [ManifestLine(n + 1, n, json.dumps(obj)) for n, obj in enumerate(objects)]


def test_plan_reports_every_invalid_line_with_its_class(tmp_path, speech_wav, portrait_png, tiny_model):
    good = {
        "task": "generate",
        "audio": str(speech_wav),
        "portrait": str(portrait_png),
        "model": str(tiny_model),
    }
    plan = plan_batch(
        lines_of(
            {**good, "output": str(tmp_path / "ok.mp4")},
            {**good, "output": str(tmp_path / "a.mp4"), "audio": str(tmp_path / "missing.wav")},
            {**good, "output": str(tmp_path / "b.mp4"), "steps": 0},
            {**good, "output": str(tmp_path / "ok.mp4")},  # same file as line 1
            {**good, "output": str(tmp_path / "c.mp4"), "task": "dance"},
        ),
        shard=None,
        resume=False,
        device=None,
    )
    assert [job.line for job in plan.to_run] == [1]
    errors = {result.line: (result.exit_code, result.error) for result in plan.decided}
    assert errors[2] == (EXIT_USAGE, f"--audio {tmp_path / 'missing.wav'}: file not found")
    assert errors[3][0] == EXIT_USAGE and '"steps"' in errors[3][1]
    assert errors[4] == (EXIT_USAGE, f"output {tmp_path / 'ok.mp4'}: line 1 writes the same file")
    assert errors[5][0] == EXIT_USAGE and errors[5][1].startswith('unknown task "dance"')
    assert plan.indices == [0, 1, 2, 3, 4]


def test_existing_output_needs_overwrite_or_resume(tmp_path, speech_wav, portrait_png, tiny_model):
    existing = tmp_path / "done.mp4"
    existing.write_bytes(b"not a video")
    job = {
        "task": "generate",
        "audio": str(speech_wav),
        "portrait": str(portrait_png),
        "output": str(existing),
        "model": str(tiny_model),
    }

    refused = plan_batch(lines_of(job), shard=None, resume=False, device=None)
    assert "--resume" in refused.decided[0].error and '"overwrite": true' in refused.decided[0].error
    # --resume does not call a foreign file done, and does not replace it unasked either.
    foreign = plan_batch(lines_of(job), shard=None, resume=True, device=None)
    assert "exists but is not a complete result" in foreign.decided[0].error
    replaced = plan_batch(lines_of({**job, "overwrite": True}), shard=None, resume=True, device=None)
    assert [j.line for j in replaced.to_run] == [1]


def test_devices_replace_every_jobs_device_before_validation(tmp_path, speech_wav, portrait_png, tiny_model):
    job = {
        "task": "generate",
        "audio": str(speech_wav),
        "portrait": str(portrait_png),
        "dtype": "fp16",
        "model": str(tiny_model),
    }
    plan = plan_batch(
        lines_of(
            {**job, "output": str(tmp_path / "a.mp4")},
            {**job, "output": str(tmp_path / "b.mp4"), "dtype": "fp32"},
        ),
        shard=None,
        resume=False,
        device="cpu",
    )
    assert "float16 is not supported on CPU" in plan.decided[0].error
    assert plan.to_run[0].job.settings.device == "cpu"


def test_validate_only_reports_all_invalid_lines_and_loads_nothing(
    tmp_path, monkeypatch, write_manifest, batch_cli, job_line, clips
):
    from skyaudio_cli.pipeline.cache import PipelineCache

    monkeypatch.setattr(PipelineCache, "get", lambda *a, **k: pytest.fail("a model was loaded"))
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [
            job_line(clips[0], tmp_path / "a.mp4"),
            job_line(tmp_path / "missing.wav", tmp_path / "b.mp4"),
            "",
            job_line(clips[0], tmp_path / "c.mp4", colour="blue"),
            "{oops",
        ],
    )
    code, results, stderr = batch_cli(manifest, "--validate-only")
    assert code == EXIT_USAGE and results == []
    assert "line 2: --audio" in stderr and 'line 4: unknown key "colour"' in stderr
    assert "line 5: not valid JSON" in stderr
    assert "1 jobs to run" in stderr

    ok = write_manifest(tmp_path / "ok.jsonl", [job_line(clips[0], tmp_path / "a.mp4")])
    assert batch_cli(ok, "--validate-only")[0] == 0
    assert not (tmp_path / "a.mp4").exists()


def test_validate_only_reports_a_model_without_weights_once(
    tmp_path, monkeypatch, write_manifest, batch_cli, job_line, clips
):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    on_the_hub = {"model": "skyreels-v3-a2v", "device": "auto", "dtype": "bf16"}
    manifest = write_manifest(
        tmp_path / "jobs.jsonl",
        [
            job_line(clips[0], tmp_path / "a.mp4", **on_the_hub),
            job_line(clips[1], tmp_path / "b.mp4"),  # the tiny model: valid
            job_line(clips[2], tmp_path / "c.mp4", **on_the_hub),
            job_line(clips[0], tmp_path / "d.mp4", model="nosuch"),
        ],
    )
    code, results, stderr = batch_cli(manifest, "--validate-only")
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 3 and results == []
    assert len(errors) == 2, stderr
    assert errors[0].startswith("error: weights for 'skyreels-v3-a2v' are not downloaded")
    assert "run: skyaudio weights fetch skyreels-v3-a2v" in errors[0] and errors[0].endswith("(lines 1, 3)")
    assert errors[1].startswith("error: unknown model 'nosuch'") and errors[1].endswith("(line 4)")
    assert "1 jobs to run, 0 already complete, 0 invalid, 3 for models without weights" in stderr
    assert list(tmp_path.iterdir()) == [manifest]


def test_jobs_of_a_model_without_weights_fail_before_any_model_loads(tmp_path, monkeypatch, job_line, clips):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    lines = lines_of(
        job_line(clips[0], tmp_path / "a.mp4", model="humo-17b", device="auto", dtype="bf16"),
        job_line(clips[1], tmp_path / "b.mp4"),
    )
    plan = plan_batch(lines, shard=None, resume=False, device=None)
    assert [job.line for job in plan.to_run] == [2]
    (failed,) = plan.decided
    assert (failed.line, failed.status, failed.exit_code) == (1, "failed", 3)
    assert "skyaudio weights fetch humo-17b" in failed.error
    assert [(model.model, model.lines) for model in plan.unavailable] == [("humo-17b", (1,))]


def test_an_output_in_a_folder_that_does_not_exist_yet_is_valid(tmp_path, job_line, clips):
    plan = plan_batch(lines_of(job_line(clips[0], tmp_path / "out" / "new" / "a.mp4")), shard=None,
                      resume=False, device=None)  # fmt: skip
    assert [job.line for job in plan.to_run] == [1] and plan.decided == []
    assert list(tmp_path.iterdir()) == []  # validation creates nothing; the writer will


def test_reference_and_edit_modes_parse_like_their_options():
    job = parse({**BASE, "portrait": "clip.mp4", "reference_mode": "first-frame", "loop_mode": "freeze"})
    assert (job.reference_mode, job.loop_mode) == ("first-frame", "freeze") and not job.follows_video
    assert parse({**BASE, "portrait": "clip.mov"}).follows_video  # a video is followed by default
    edit = parse_line(
        ManifestLine(
            1, 0, json.dumps({**BASE, "task": "edit-lipsync", "video": "v.mp4", "mode": "full-frame"})
        )
    ).job
    assert edit.mode == "full-frame"
    bad = [
        ({"reference_mode": "sideways"}, "'sideways' is not one of"),
        ({"task": "edit-lipsync", "video": "v.mp4", "mode": "blur"}, "'blur' is not one of"),
    ]
    for fields, message in bad:
        with pytest.raises(InputError, match=message):
            parse({**BASE, **fields})
