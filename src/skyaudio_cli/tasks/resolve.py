"""A request -> one `ResolvedJob`: the model found, its family's defaults merged in, every check that
needs no weights made. Runs once per job, before anything loads (docs/architecture.md).

The CLI resolves a job before importing any model code, so a wrong combination (HuMo asked to extend
a video, guidance a release would not run, a portrait missing) is one line in well under a second;
batch resolves each job before it runs, on the models it has already loaded.
"""

from dataclasses import dataclass, fields, replace
from typing import Any

from skyaudio_cli.errors import InputError
from skyaudio_cli.modes import FUSION_CANNOT_EXTEND, HUMO_CANNOT_EXTEND, LongVideoMode
from skyaudio_cli.pipeline.family import Architecture, FamilyDefaults, GenerationOptions, family_defaults
from skyaudio_cli.tasks.jobs import EditLipsyncJob, ExtendJob, GenerateJob, Settings
from skyaudio_cli.weights.local_folder import ResolvedModel


@dataclass(frozen=True)
class ResolvedJob:
    """One job, ready to run: the request, where its model's files are, and what it will do."""

    task: str
    job: GenerateJob | ExtendJob | EditLipsyncJob
    model: ResolvedModel
    family: FamilyDefaults
    config: GenerationOptions  # merged: every family default filled in

    @property
    def settings(self) -> Settings:
        return self.job.settings

    @property
    def architecture(self) -> Architecture:
        """The model variant, and with it what the job can do (`can_extend`, `needs_portrait`, ...)."""
        return self.family.variant


def resolve_validated(task: str, job: Any) -> ResolvedJob:
    """Find the model's files of a `task` job whose own fields are validated (registry.resolve, or
    batch's planning, validates them first) and check the job against the model's family."""
    from skyaudio_cli.weights import resolve_model

    s = job.settings
    model = resolve_model(s.family)
    family = family_defaults(model.family)
    family.check_scales(s.text_scale, s.audio_scale)
    # The generation fields of the settings, by name, with the family's defaults filled in.
    options = GenerationOptions(**{f.name: getattr(s, f.name) for f in fields(GenerationOptions)})
    options = options.merged(family)
    resolved = ResolvedJob(task, job, model, family, options)
    mode = _CHECKS[task](resolved, LongVideoMode(options.long_video_mode))
    return replace(resolved, config=replace(resolved.config, long_video_mode=mode))


def _check_generate(r: ResolvedJob, mode: LongVideoMode) -> LongVideoMode:
    if r.job.portrait is None and r.architecture.needs_portrait:
        raise InputError(f"--portrait is required for model '{r.model.family}' (it animates a given face)")
    # Fused windows have no per-window reference frame to follow, except HuMo's (each has its own).
    if r.job.follows_video and mode == LongVideoMode.fusion and not r.architecture.is_humo:
        raise InputError(
            f"--reference-mode follow: --long-video-mode fusion gives model '{r.model.family}' no "
            "per-window reference frame; use --long-video-mode auto or --reference-mode first-frame"
        )
    return mode


def _check_extend(r: ResolvedJob, mode: LongVideoMode) -> LongVideoMode:
    if not r.architecture.can_extend:
        raise InputError(f"--model {r.settings.model}: {HUMO_CANNOT_EXTEND}")
    if mode == LongVideoMode.fusion:
        raise InputError(FUSION_CANNOT_EXTEND)
    return mode


def _check_edit_lipsync(r: ResolvedJob, mode: LongVideoMode) -> LongVideoMode:
    if not r.architecture.has_image_encoder:
        raise InputError(
            f"--model {r.settings.model}: edit-lipsync needs a family conditioned on a reference image"
        )
    # Latent fusion has no per-window hook to hold the source latents; edits chain windows by motion
    # frames, which every image-conditioned family supports.
    return LongVideoMode.infinitetalk if mode == LongVideoMode.fusion else mode


_CHECKS = {"generate": _check_generate, "extend": _check_extend, "edit-lipsync": _check_edit_lipsync}
