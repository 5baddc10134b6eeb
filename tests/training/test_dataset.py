"""`skyaudio dataset build` on real media: clips, cached tensors, masks, drops with reasons, resume."""

import json

import numpy as np
from safetensors.torch import load_file

from .conftest import CLIP_FRAMES


def test_manifest_lists_the_talking_clips_and_drops_the_faceless_one(
    built_dataset, talking_video, faceless_video
):
    out, report = built_dataset
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    # 30 frames of one face in one shot -> 3 clips of 9 frames, 3 frames left over.
    assert [e["start_frame"] for e in entries] == [0, 9, 18]
    assert {e["video"] for e in entries} == {str(talking_video)}
    assert all(e["caption"] == "An astronaut talks to the camera." for e in entries)
    reasons = {(d.video, d.reason) for d in report.dropped}
    assert (str(faceless_video), "no face") in reasons
    assert (str(talking_video), f"shorter than {CLIP_FRAMES} frames") in reasons
    assert report.clips == 3 and report.new_clips == 3


def test_cached_tensors_have_the_model_shapes(built_dataset):
    out, _ = built_dataset
    entry = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    tensors = load_file(str(out / entry["file"]))
    latent_frames, h, w = 1 + (CLIP_FRAMES - 1) // 4, entry["height"] // 8, entry["width"] // 8
    assert entry["latent_frames"] == latent_frames
    for key in ("latents", "cond_image", "cond_video"):
        assert tuple(tensors[key].shape) == (16, latent_frames, h, w)
    # tiny wav2vec2: 2 layers x 32 channels; 5-frame windows per video frame.
    assert tuple(tensors["audio"].shape) == (CLIP_FRAMES, 5, 2, 32)
    assert tuple(tensors["text"].shape) == (512, 32)
    assert tensors["image_tokens"].shape[-1] == 32
    for key in ("face", "lip", "edit"):
        assert tuple(tensors[key].shape) == (latent_frames, h, w)


def test_masks_cover_the_face(built_dataset):
    """The face mask lies on the astronaut's face (upper middle of the 4:3 frame cropped square), the
    lip mask inside it and much smaller; both are fractions in [0, 1]."""
    out, _ = built_dataset
    entry = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    tensors = load_file(str(out / entry["file"]))
    face, lip = tensors["face"].numpy(), tensors["lip"].numpy()
    assert face.min() >= 0 and face.max() <= 1 and face.max() == 1.0
    assert lip.sum() > 0 and lip.sum() < 0.5 * face.sum()
    assert np.all(lip[face == 0] == 0)
    ys, xs = np.nonzero(face[0] > 0.5)
    h, w = face.shape[1:]
    # astronaut's face: centre near x 0.55, y 0.35 of the crop, well inside the frame
    assert 0.3 * w < xs.mean() < 0.8 * w and 0.1 * h < ys.mean() < 0.6 * h


def test_rerun_skips_done_videos(built_dataset, tiny_model, talking_video, faceless_video):
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset

    out, _ = built_dataset
    before = (out / "manifest.jsonl").read_text()
    report = build_dataset(
        [talking_video, faceless_video], out, BuildOptions(model=str(tiny_model), clip_frames=CLIP_FRAMES)
    )
    assert report.skipped_videos == 2 and report.new_clips == 0 and report.clips == 3
    assert (out / "manifest.jsonl").read_text() == before


def test_cli_reports_dropped_clips_in_json(run_cli, tiny_model, faceless_video, tmp_path):
    arguments = ["dataset", "build", faceless_video, "-o", tmp_path / "d", "-m", tiny_model]
    code, out, err = run_cli([*arguments, "--clip-frames", CLIP_FRAMES, "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "ok" and result["clips"] == 0
    assert result["dropped"] == [
        {"video": str(faceless_video), "start_frame": 0, "frames": 30, "reason": "no face"}
    ]


def test_cli_refuses_a_missing_video_before_loading_models(run_cli, tiny_model, tmp_path):
    code, out, err = run_cli(
        ["dataset", "build", tmp_path / "nope.mp4", "-o", tmp_path / "d", "-m", tiny_model]
    )
    assert code == 2
    assert err.strip().splitlines() == [f"error: {tmp_path / 'nope.mp4'}: video file not found"]
    assert not (tmp_path / "d").exists()


def test_bad_clip_length_is_refused(run_cli, tiny_model, talking_video, tmp_path):
    code, _, err = run_cli(["dataset", "build", talking_video, "-o", tmp_path / "d", "-m", tiny_model,
                            "--clip-frames", "10"])  # fmt: skip
    assert code == 2 and "--clip-frames 10: must be 1 + 4k and at least 5" in err
