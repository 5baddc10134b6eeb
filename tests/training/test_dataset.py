"""`skyaudio dataset build` on real media: clips, cached tensors, masks, drops with reasons, resume."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
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


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory):
    """A random BLIP captioning model in the released layout (config, safetensors, processor files)
    with a 19-word vocabulary: its captions are words of that vocabulary."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("captioner") / "blip"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "person", "talks", "the", "camera",
             "to", "man", "woman", "in", "red", "coat", "astronaut", "smiles"]  # fmt: skip
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    text = dict(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=37, encoder_hidden_size=32, max_position_embeddings=64, bos_token_id=5,
                pad_token_id=0, sep_token_id=3, eos_token_id=3)  # fmt: skip
    vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                  image_size=32, patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(
        BlipConfig(text_config=text, vision_config=vision, projection_dim=16)
    )
    model.save_pretrained(folder)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=BertTokenizer(str(vocab), bos_token="[DEC]"),
    )
    processor.save_pretrained(folder)
    return folder


def test_videos_without_a_sidecar_are_captioned_by_the_caption_model(
    tmp_path, tiny_model, tiny_captioner, talking_video
):
    import torch
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    from skyaudio_cli.media.video import iter_frames
    from skyaudio_cli.training.dataset import BuildOptions, build_dataset, read_manifest

    bare = tmp_path / "bare.mp4"  # the talking video without its .txt caption
    shutil.copy(talking_video, bare)
    options = BuildOptions(model=str(tiny_model), clip_frames=CLIP_FRAMES, caption_model=str(tiny_captioner))
    build_dataset([bare, talking_video], tmp_path / "data", options)
    _, clips = read_manifest(tmp_path / "data")
    captions = {Path(c["video"]).name: c["caption"] for c in clips}
    assert captions["talk.mp4"] == "An astronaut talks to the camera."  # the sidecar wins
    # The captioner's greedy caption of the video's middle frame, computed here with transformers.
    frames = list(iter_frames(bare, fps=25))
    processor = BlipProcessor.from_pretrained(tiny_captioner)
    model = BlipForConditionalGeneration.from_pretrained(tiny_captioner).eval()
    inputs = processor(images=Image.fromarray(frames[len(frames) // 2]), return_tensors="pt")
    with torch.no_grad():
        tokens = model.generate(**inputs, max_new_tokens=40, do_sample=False)
    expected = processor.decode(tokens[0], skip_special_tokens=True).strip()
    assert expected and captions["bare.mp4"] == expected
    assert set(expected.split()) <= {"a", "person", "talks", "the", "camera", "to", "man", "woman", "in",
                                      "red", "coat", "astronaut", "smiles"}  # fmt: skip


def test_an_unknown_caption_model_is_refused_before_loading(run_cli, tiny_model, talking_video, tmp_path):
    code, _, stderr = run_cli(
        ["dataset", "build", talking_video, "-o", tmp_path / "d", "-m", tiny_model, "--caption-model", "nope"]
    )
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "--caption-model nope: unknown captioner (known: blip-large" in stderr
    assert not (tmp_path / "d").exists()
