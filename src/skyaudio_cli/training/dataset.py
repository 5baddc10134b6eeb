"""`skyaudio dataset build`: talking videos -> cached training triplets (video latents, audio, text).

Per video: frames at the family's 25 fps; scene cuts from the frame-difference test edit-lipsync
uses (face/tracking.py); the faces the same Haar detector and tracker find. A clip is a stretch of
`clip_frames` frames inside one shot where exactly one face is tracked on every frame and the audio
is not silent; what is left out is reported with its reason. Each clip's tensors go to
`clips/<id>.safetensors` (written to a temporary name, then renamed) and one line to
`manifest.jsonl`; a video is listed in `videos.jsonl` once all its clips are written, which is what
a rerun skips (resume). Every tensor is computed by the same encoders, at the same loudness, with
the same feature stream and audio windows as inference (`generate`). HuMo families cache what
`HumoPipeline` conditions on instead of the a2v tensors (`_humo_clip_tensors`).
"""

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from skyaudio_cli.conditioning.audio_encoders import load_audio_encoder
from skyaudio_cli.conditioning.audio_features import SAMPLE_RATE
from skyaudio_cli.conditioning.audio_stream import feature_stream
from skyaudio_cli.conditioning.audio_windows import frame_windows, humo_latent_windows, humo_window_frames
from skyaudio_cli.conditioning.frames import frames_to_tensor, reference_video, to_signed
from skyaudio_cli.conditioning.image_encoder import ImageEncoder
from skyaudio_cli.conditioning.text import TextEncoder
from skyaudio_cli.conditioning.vae import TEMPORAL_STRIDE, VideoVAE
from skyaudio_cli.errors import InputError
from skyaudio_cli.face.detector import FaceDetector
from skyaudio_cli.face.mask import latent_mask, lower_face_mask
from skyaudio_cli.face.tracking import is_scene_cut, thumbnail, track_faces
from skyaudio_cli.long_video.windows import mirrored_index
from skyaudio_cli.media.atomic import atomic_write_path
from skyaudio_cli.media.audio import is_silent, load_audio, normalize_loudness
from skyaudio_cli.media.image import resize_center_crop
from skyaudio_cli.media.video import iter_frames, probe_video
from skyaudio_cli.pipeline.buckets import pick_size
from skyaudio_cli.pipeline.family import FamilyDefaults, family_defaults
from skyaudio_cli.pipeline.humo import letterbox
from skyaudio_cli.pipeline.talking_video import AUDIO_RADIUS
from skyaudio_cli.training.captions import Captioner, caption_for, captioner_folder
from skyaudio_cli.training.masks import face_mask, latent_coverage, lip_mask

MANIFEST = "manifest.jsonl"
VIDEOS = "videos.jsonl"
DATASET_INFO = "dataset.json"
NULL_TEXT = "null_text.safetensors"
CLIPS = "clips"


@dataclass(frozen=True)
class BuildOptions:
    model: str
    clip_frames: int
    # Every clip is cached at each of these (480p, 720p or WxH; none: the family's default), so
    # curriculum stages can train at different resolutions (a stage's `resolution`).
    resolutions: tuple[str, ...] = ()
    device: str = "cpu"
    # A captioner (weights.toml name or folder) for videos without a sidecar caption; None: the
    # family's default prompt.
    caption_model: str | None = None


@dataclass(frozen=True)
class Dropped:
    video: str
    start_frame: int
    frames: int
    reason: str


@dataclass(frozen=True)
class BuildReport:
    clips: int  # in the manifest, from this run and earlier ones
    new_clips: int
    skipped_videos: int  # done by an earlier run
    dropped: tuple[Dropped, ...]


class Encoders:
    """The family's conditioning encoders (no DiT), loaded as its pipeline loads them (no image
    encoder for HuMo), and the captioner when one is asked for."""

    def __init__(self, model: str, device: str, caption_model: str | None = None) -> None:
        from skyaudio_cli.weights import resolve_model

        resolved = resolve_model(model)
        self.defaults: FamilyDefaults = family_defaults(resolved.family)
        parts = resolved.components
        self.device = torch.device(device)
        self.vae = VideoVAE.from_pretrained(parts["vae"], device=self.device, dtype=torch.float32)
        self.text = TextEncoder.from_pretrained(
            parts["text_encoder"], parts["tokenizer"], device=self.device, dtype=torch.float32
        )
        # HuMo has no CLIP encoder: its reference enters as VAE latents.
        self.image = None
        if self.defaults.variant.has_image_encoder:
            self.image = ImageEncoder.from_pretrained(
                parts["image_encoder"], device=self.device, dtype=torch.float32
            )
        self.audio = load_audio_encoder(
            parts["audio_encoder"], resolved.audio_encoder, device=self.device, dtype=torch.float32
        )
        self.captioner = None
        if caption_model is not None:
            self.captioner = Captioner(captioner_folder(caption_model), device)


def single_face_stretches(frames: Sequence[np.ndarray], detector: FaceDetector | None = None):
    """-> (faces, stretches, rejected): the tracked box per frame, [start, stop) runs of frames in
    one shot with exactly one face, and (start, stop, reason) for the runs without."""
    detector = detector or FaceDetector()
    detections, cuts, previous = [], [], None
    for frame in frames:
        detections.append(detector.detect(frame))
        current = thumbnail(frame)
        cuts.append(is_scene_cut(previous, current))
        previous = current
    faces = track_faces(detections, cuts=cuts)
    status = []
    for candidates, face in zip(detections, faces, strict=True):
        status.append("ok" if face is not None and len(candidates) <= 1 else
                      "no face" if face is None else "several faces")  # fmt: skip
    stretches, rejected, start = [], [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or cuts[i] or status[i] != status[start]:
            (
                stretches.append((start, i))
                if status[start] == "ok"
                else rejected.append((start, i, status[start]))
            )
            start = i
    return faces, stretches, rejected


def build_dataset(
    videos: Sequence[Path],
    out_dir: Path,
    options: BuildOptions,
    *,
    encoders: Encoders | None = None,
    on_video: Callable[[int, int, Path], None] | None = None,
) -> BuildReport:
    """Build (or continue building) the dataset in `out_dir` from `videos`."""
    for video in videos:
        if not video.is_file():
            raise InputError(f"{video}: video file not found")
    if (options.clip_frames - 1) % 4 or options.clip_frames < 5:
        raise InputError(f"--clip-frames {options.clip_frames}: must be 1 + 4k and at least 5")
    encoders = encoders or Encoders(options.model, options.device, options.caption_model)
    d = encoders.defaults
    info = {
        "family": d.family, "fps": d.fps, "clip_frames": options.clip_frames,
        "motion_frames": d.motion_frames, "resolutions": list(options.resolutions or (d.resolution,)),
        "shift": d.shift, "caption_model": options.caption_model,
    }  # fmt: skip
    _check_or_write_info(out_dir, info)
    done = _read_jsonl(out_dir / VIDEOS)
    done_paths = {entry["video"] for entry in done}
    null_text = out_dir / NULL_TEXT
    if not null_text.is_file():
        with atomic_write_path(null_text) as partial:
            save_file({"text": encoders.text.encode([d.negative_prompt])[0].contiguous()}, str(partial))
    dropped: list[Dropped] = [Dropped(**item) for entry in done for item in entry["dropped"]]
    new_clips, skipped = 0, 0
    for index, video in enumerate(videos):
        if on_video is not None:
            on_video(index, len(videos), video)
        key = str(video.resolve())
        if key in done_paths:
            skipped += 1
            continue
        clips, rejected = _build_video(video, out_dir, options, encoders)
        for clip in clips:
            _append_jsonl(out_dir / MANIFEST, clip)
        _append_jsonl(
            out_dir / VIDEOS, {"video": key, "clips": len(clips), "dropped": [asdict(r) for r in rejected]}
        )
        done_paths.add(key)
        new_clips += len(clips)
        dropped.extend(rejected)
    if on_video is not None:
        on_video(len(videos), len(videos), Path())
    total = len(_read_jsonl(out_dir / MANIFEST))
    return BuildReport(clips=total, new_clips=new_clips, skipped_videos=skipped, dropped=tuple(dropped))


def _build_video(video: Path, out_dir: Path, options: BuildOptions, enc: Encoders):
    d = enc.defaults
    name = str(video)
    probe = probe_video(video)
    if not probe.has_audio:
        return [], [Dropped(name, 0, probe.num_frames, "no audio track")]
    frames = list(iter_frames(video, fps=d.fps))
    speech = load_audio(video, SAMPLE_RATE)
    if d.loudness_lufs is not None:
        speech = normalize_loudness(speech, SAMPLE_RATE, target_lufs=d.loudness_lufs)
    faces, stretches, rejected = single_face_stretches(frames)
    dropped = [Dropped(name, start, stop - start, reason) for start, stop, reason in rejected]
    audio = feature_stream(enc.audio, speech, d.fps, d.audio_frames)
    model_caption = None if enc.captioner is None else lambda: enc.captioner.caption(frames[len(frames) // 2])
    caption = caption_for(video, d.prompt, model_caption)
    text = enc.text.encode([caption])[0]
    video_id = f"{video.stem}-{hashlib.sha256(str(video.resolve()).encode()).hexdigest()[:8]}"
    n = options.clip_frames
    clips = []
    for start, stop in stretches:
        for clip_start in range(start, stop - n + 1, n):
            samples = speech[
                round(clip_start / d.fps * SAMPLE_RATE) : round((clip_start + n) / d.fps * SAMPLE_RATE)
            ]
            if samples.size == 0 or is_silent(samples):
                dropped.append(Dropped(name, clip_start, n, "silent audio"))
                continue
            for resolution in options.resolutions or (d.resolution,):
                width, height = pick_size(resolution, probe.width, probe.height, d.size_buckets)
                clip_id = f"{video_id}-{resolution}-{clip_start:06d}"
                window = slice(clip_start, clip_start + n)
                clip_tensors = _humo_clip_tensors if d.variant.is_humo else _clip_tensors
                tensors = clip_tensors(frames[window], faces[window], audio, clip_start, width, height, enc)
                tensors["text"] = text
                path = out_dir / CLIPS / f"{clip_id}.safetensors"
                with atomic_write_path(path) as partial:
                    save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(partial))
                clips.append({"id": clip_id, "file": f"{CLIPS}/{clip_id}.safetensors", "video": name,
                              "start_frame": clip_start, "frames": n, "resolution": resolution,
                              "latent_frames": tensors["latents"].shape[1], "width": width, "height": height,
                              "caption": caption})  # fmt: skip
        tail = (stop - start) % n
        if tail:
            dropped.append(Dropped(name, stop - tail, tail, f"shorter than {n} frames"))
    return clips, dropped


def _clip_video(frames, width: int, height: int, enc: Encoders) -> torch.Tensor:
    """The clip's frames centre-cropped to the bucket, [1, 3, n, H, W] in [-1, 1]."""
    fitted = np.stack([np.asarray(resize_center_crop(Image.fromarray(f), width, height)) for f in frames])
    return frames_to_tensor(fitted, width, height).to(enc.device).permute(1, 0, 2, 3)[None]


def _face_lip_masks(frames, faces, width: int, height: int, draws) -> list[np.ndarray]:
    """Each of `draws` (box, w, h -> mask) per frame, drawn on the source frame then fitted like it."""
    source_h, source_w = frames[0].shape[:2]

    def fitted(mask: np.ndarray) -> np.ndarray:
        return np.asarray(resize_center_crop(Image.fromarray(mask), width, height))

    return [np.stack([fitted(draw(face, source_w, source_h)) for face in faces]) for draw in draws]


@torch.no_grad()
def _humo_clip_tensors(
    frames, faces, audio, start: int, width: int, height: int, enc: Encoders
) -> dict[str, torch.Tensor]:
    """HuMo's tensors of a clip, as `HumoPipeline` conditions a one-window video of it.

    reference: the clip's first frame letterboxed onto white and VAE-encoded (`encode_portrait`),
    [16, 1, h, w]. zero_latents (humo-17b): the latents of an all-zero video of 1 + 4 * latent
    frames, [16, latents + 1, h, w] (`zero_video_latents`); the VAE is causal, so a stage of fewer
    frames takes its first latents. audio: `humo_latent_windows` on the grid of a video starting at
    the clip's first frame (latent 0 = that frame alone, its first 3 slots blank), the rows read from
    the whole video's feature stream (real speech around the clip's ends; zeros only past the
    audio's own ends), [latents, 8, layers, channels]; the reference frame's zero window is added at
    train time.
    """
    video = _clip_video(frames, width, height, enc)
    latents = enc.vae.encode(video)[0]
    portrait = torch.from_numpy(np.array(letterbox(Image.fromarray(frames[0]), width, height)))
    reference = enc.vae.encode(to_signed(portrait.permute(2, 0, 1)[None, :, None]).to(enc.device))[0]
    num_latents = latents.shape[1]
    reach = humo_window_frames(0, num_latents)
    first = max(0, start + reach.start)
    rows = audio.rows(range(first, min(start + reach.stop, audio.num_frames)))
    face, lip = _face_lip_masks(frames, faces, width, height, (face_mask, lip_mask))
    tensors = {
        "latents": latents,
        "reference": reference,
        "audio": humo_latent_windows(rows, num_latents, first_frame=start - first),
        "face": torch.from_numpy(latent_coverage(face)),
        "lip": torch.from_numpy(latent_coverage(lip)),
    }
    if enc.defaults.variant.masked_condition:
        zero_video = video.new_zeros(1, 3, 1 + TEMPORAL_STRIDE * num_latents, height, width)
        tensors["zero_latents"] = enc.vae.encode(zero_video)[0]
    return tensors


@torch.no_grad()
def _clip_tensors(
    frames, faces, audio, start: int, width: int, height: int, enc: Encoders
) -> dict[str, torch.Tensor]:
    d = enc.defaults
    n = len(frames)
    video = _clip_video(frames, width, height, enc)
    pixels = video[0].permute(1, 0, 2, 3)
    latents = enc.vae.encode(video)[0]
    cond_image = enc.vae.encode(reference_video(video[:, :, :1], n))[0]
    motion = video.clone()
    motion[:, :, d.motion_frames :] = 0.0  # mid-grey, as the pipeline leaves unknown frames
    cond_video = enc.vae.encode(motion)[0]
    face, lip, lower = _face_lip_masks(frames, faces, width, height, (
        face_mask, lip_mask, lambda box, w, h: lower_face_mask(box, w, h).astype(np.float32) / 255.0
    ))  # fmt: skip
    # Audio: every frame's window of AUDIO_RADIUS frames either side, indices clamped at the start
    # and mirrored past the end as the pipeline reads them.
    indices = [
        mirrored_index(max(i, 0), audio.num_frames)
        for i in range(start - AUDIO_RADIUS, start + n + AUDIO_RADIUS)
    ]
    rows = audio.rows(indices)
    windows = frame_windows(rows, AUDIO_RADIUS, start=AUDIO_RADIUS, stop=AUDIO_RADIUS + n)
    return {
        "latents": latents,
        "cond_image": cond_image,
        "cond_video": cond_video,
        "image_tokens": enc.image.encode(pixels[:1])[0],
        "audio": windows,
        "face": torch.from_numpy(latent_coverage(face)),
        "lip": torch.from_numpy(latent_coverage(lip)),
        "edit": torch.from_numpy(latent_mask((lower * 255).astype(np.uint8))),
    }


def _check_or_write_info(out_dir: Path, info: dict) -> None:
    path = out_dir / DATASET_INFO
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != info:
            changed = next(key for key in info if stored.get(key) != info[key])
            raise InputError(
                f"{out_dir}: holds a dataset built with {changed}={stored.get(changed)!r}, not "
                f"{info[changed]!r}; use another -o folder"
            )
        return
    with atomic_write_path(path) as partial:
        partial.write_text(json.dumps(info, indent=2) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append_jsonl(path: Path, entry: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(data_dir: Path) -> tuple[dict, list[dict]]:
    """(dataset.json, manifest entries) of a built dataset; InputError when missing or empty."""
    manifest = data_dir / MANIFEST
    if not (data_dir / DATASET_INFO).is_file() or not manifest.is_file():
        raise InputError(
            f"{data_dir}: no dataset here ({MANIFEST} missing); run `skyaudio dataset build` first"
        )
    try:
        entries = _read_jsonl(manifest)
        info = json.loads((data_dir / DATASET_INFO).read_text())
    except ValueError as error:
        raise InputError(f"{manifest}: corrupt manifest ({error})") from error
    if not entries:
        raise InputError(f"{manifest}: the dataset is empty (every clip was dropped; see videos.jsonl)")
    return info, entries
