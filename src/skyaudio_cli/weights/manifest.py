"""The weights manifest (weights.toml): which files each model family needs and where they live.

Schema (validated strictly, so a typo fails loudly instead of silently downloading the wrong thing):

    default = "<model name>"
    [shared.<key>]                  # a component description several models refer to by key
    [models.<name>]
    description, licence = str
    audio_encoder = "wav2vec2" | "whisper"
    generated = bool                # optional: made locally (tiny-random), no components
    [models.<name>.defaults]        # release settings: str/int/float/bool values
    [models.<name>.components]
    <slot> = "<shared key>"         # or a table:
    [models.<name>.components.<slot>]
    repo = "owner/name"; revision = 40-hex commit | "main"; subfolder = "" | "a/b"
    patterns = [glob, ...]; exclude = [glob, ...]  (relative to subfolder)
    size_gb = float | size_bytes = int; format = "original"|"diffusers"|"transformers"|"pth"
    sha256 = { "<path relative to subfolder>" = "<64 hex>" }   # optional, only real digests
    [models.<name>.presets.<preset>]  # a published recipe: a LoRA plus the settings it is run with
    description = str
    [models.<name>.presets.<preset>.defaults]   # override the family's defaults (lora_scale too)
    [models.<name>.presets.<preset>.lora]       # one file, as a component table
    [captioners.<name>]             # an image-captioning model (`dataset build --caption-model`), a
                                    # component table in transformers layout

Each preset becomes a family of its own, ``<name>-<preset>``: the base family's components plus the
``lora`` component, with the merged defaults; ``--preset <preset>`` selects it.

`<slot>` is one of COMPONENT_NAMES; the model loaders look components up by these names.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from skyaudio_cli.errors import InputError, WeightsError

COMPONENT_NAMES = (
    "transformer",
    "transformer_adapter",
    "vae",
    "text_encoder",
    "tokenizer",
    "image_encoder",
    "image_processor",
    "audio_encoder",
    "lora",
)
REQUIRED_COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "audio_encoder")
AUDIO_ENCODERS = ("wav2vec2", "whisper")
FORMATS = ("original", "diffusers", "transformers", "pth")
MAIN_BRANCH = "main"

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_GLOB_CHARS = frozenset("*?[")
_COMPONENT_KEYS = {
    "repo",
    "revision",
    "subfolder",
    "patterns",
    "exclude",
    "size_gb",
    "size_bytes",
    "format",
    "sha256",
}
_MODEL_KEYS = {"description", "licence", "audio_encoder", "generated", "defaults", "components", "presets"}
_PRESET_KEYS = {"description", "defaults", "lora"}


@dataclass(frozen=True)
class ComponentSpec:
    """One component of a model: a set of files inside one Hub repo at one revision."""

    name: str
    repo: str
    revision: str
    subfolder: str
    patterns: tuple[str, ...]
    exclude: tuple[str, ...]
    size_bytes: int
    format: str
    sha256: Mapping[str, str]

    def repo_path(self, relative: str) -> str:
        """Path inside the repo of a path given relative to the component's subfolder."""
        return f"{self.subfolder}/{relative}" if self.subfolder else relative

    @property
    def allow_patterns(self) -> list[str]:
        return [self.repo_path(pattern) for pattern in self.patterns]

    @property
    def ignore_patterns(self) -> list[str] | None:
        return [self.repo_path(pattern) for pattern in self.exclude] or None

    @property
    def single_file(self) -> str | None:
        """The file name when the component is exactly one named file (loaders then get the file)."""
        if len(self.patterns) == 1 and not _GLOB_CHARS & set(self.patterns[0]):
            return self.patterns[0]
        return None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    licence: str
    audio_encoder: str
    generated: bool
    defaults: Mapping[str, Any]
    components: Mapping[str, ComponentSpec]
    preset_of: str | None = None  # the base family of a preset's family

    @property
    def size_bytes(self) -> int:
        return total_size(self.components.values())


@dataclass(frozen=True)
class Manifest:
    default: str
    models: Mapping[str, ModelSpec]
    source: str
    captioners: Mapping[str, ComponentSpec] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise InputError(f"unknown model '{name}'; known: {', '.join(self.models)}") from None

    def captioner(self, name: str) -> ComponentSpec:
        try:
            return self.captioners[name]
        except KeyError:
            known = ", ".join(self.captioners) or "none"
            raise InputError(
                f"--caption-model {name}: unknown captioner (known: {known}, or a model folder)"
            ) from None


def total_size(components: Any) -> int:
    """Sum of the approximate download sizes of the given components, in bytes."""
    return sum(component.size_bytes for component in components)


def human_size(size_bytes: int) -> str:
    """Size for messages, in decimal units like the Hub shows them ('38 GB', '381 MB')."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            value = size_bytes / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{size_bytes} B"


def default_manifest_path() -> Path:
    """The manifest shipped inside the package (the repo-root weights.toml links to it)."""
    return Path(str(resources.files("skyaudio_cli") / "weights.toml"))


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a manifest; `path` defaults to the packaged weights.toml."""
    path = Path(path) if path is not None else default_manifest_path()
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise WeightsError(f"cannot read weights manifest {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise WeightsError(f"weights manifest {path} is not valid TOML: {error}") from None
    return _ManifestParser(str(path)).parse(data)


_default_manifest: Manifest | None = None


def get_manifest(manifest: Manifest | None = None) -> Manifest:
    """`manifest` itself, or the packaged one (parsed once per process)."""
    global _default_manifest
    if manifest is not None:
        return manifest
    if _default_manifest is None:
        _default_manifest = load_manifest()
    return _default_manifest


def get_model(name: str, manifest: Manifest | None = None) -> ModelSpec:
    """The spec of model family `name`; InputError naming the known families otherwise."""
    return get_manifest(manifest).get(name)


def base_family(name: str, manifest: Manifest | None = None) -> str:
    """The family whose weights `name` loads: a preset family's base (the same components but its
    LoRA), else `name` itself (a family or a model folder)."""
    spec = get_manifest(manifest).models.get(name)
    return spec.preset_of if spec is not None and spec.preset_of is not None else name


def preset_family(model: str, preset: str, manifest: Manifest | None = None) -> str:
    """The family name of `model`'s preset `preset` (``<model>-<preset>``); InputError if none."""
    models = get_manifest(manifest).models
    name = f"{model}-{preset}"
    if name in models and models[name].preset_of == model:
        return name
    known = [spec.name.removeprefix(f"{model}-") for spec in models.values() if spec.preset_of == model]
    if model not in models:
        raise InputError(f"--preset {preset}: presets belong to a family name (from `skyaudio weights list`)")
    listed = ", ".join(known) if known else "none"
    raise InputError(f"--preset {preset}: model '{model}' has no such preset (its presets: {listed})")


class _ManifestParser:
    """Turns the raw TOML tables into specs, naming the exact key of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> WeightsError:
        return WeightsError(f"weights manifest {self.source}: {where} {problem}")

    def parse(self, data: dict[str, Any]) -> Manifest:
        unknown = set(data) - {"default", "shared", "models", "captioners"}
        if unknown:
            raise self.fail("top level", f"has unknown keys {sorted(unknown)}")
        shared = self.table(data, "shared", "top level", required=False)
        models_table = self.table(data, "models", "top level")
        models = {}
        for name, raw in models_table.items():
            models[name] = self.model(name, raw, shared)
            for preset in self.presets(models[name], raw):
                if preset.name in models_table:
                    raise self.fail(f"models.{name}.presets", f"would redefine the family {preset.name!r}")
                models[preset.name] = preset
        default = data.get("default")
        if default not in models:
            raise self.fail("default", f"must name one of the models, got {default!r}")
        captioners = {
            name: self.component("captioner", f"captioners.{name}", raw)
            for name, raw in self.table(data, "captioners", "top level", required=False).items()
        }
        return Manifest(
            default=default, models=MappingProxyType(models), source=self.source,
            captioners=MappingProxyType(captioners),
        )  # fmt: skip

    def table(self, data: dict[str, Any], key: str, where: str, *, required: bool = True) -> dict[str, Any]:
        value = data.get(key, None if required else {})
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}" if where != "top level" else key, "must be a table")
        return value

    def known_keys(self, raw: Any, where: str, allowed: set[str], kind: str = "a table") -> dict[str, Any]:
        """`raw` itself, once it is a table holding only `allowed` keys."""
        if not isinstance(raw, dict):
            raise self.fail(where, f"must be {kind}")
        unknown = set(raw) - allowed
        if unknown:
            raise self.fail(where, f"has unknown keys {sorted(unknown)}")
        return raw

    def model(self, name: str, raw: Any, shared: dict[str, Any]) -> ModelSpec:
        where = f"models.{name}"
        raw = self.known_keys(raw, where, _MODEL_KEYS)
        audio_encoder = raw.get("audio_encoder")
        if audio_encoder not in AUDIO_ENCODERS:
            raise self.fail(
                f"{where}.audio_encoder", f"must be one of {AUDIO_ENCODERS}, got {audio_encoder!r}"
            )
        generated = raw.get("generated", False)
        if not isinstance(generated, bool):
            raise self.fail(f"{where}.generated", "must be true or false")
        components = self.components(where, self.table(raw, "components", where, required=False), shared)
        missing = [slot for slot in REQUIRED_COMPONENTS if slot not in components]
        if generated and components:
            raise self.fail(where, "is generated locally and must not list Hub components")
        if not generated and missing:
            raise self.fail(where, f"lacks required components {missing}")
        self.check_one_revision_per_repo(where, components)
        return ModelSpec(
            name=name,
            description=self.text(raw, "description", where),
            licence=self.text(raw, "licence", where),
            audio_encoder=audio_encoder,
            generated=generated,
            defaults=MappingProxyType(
                self.defaults(where, self.table(raw, "defaults", where, required=False))
            ),
            components=MappingProxyType(components),
        )

    def presets(self, base: ModelSpec, raw: dict[str, Any]) -> list[ModelSpec]:
        where = f"models.{base.name}"
        specs = []
        for preset, value in self.table(raw, "presets", where, required=False).items():
            at = f"{where}.presets.{preset}"
            value = self.known_keys(value, at, _PRESET_KEYS)
            lora = self.component("lora", f"{at}.lora", value.get("lora"))
            if lora.single_file is None:
                raise self.fail(f"{at}.lora", "must name exactly one file in patterns")
            components = {**base.components, "lora": lora}
            self.check_one_revision_per_repo(at, components)
            defaults = {
                **base.defaults,
                **self.defaults(at, self.table(value, "defaults", at, required=False)),
            }
            specs.append(
                ModelSpec(
                    name=f"{base.name}-{preset}",
                    description=self.text(value, "description", at),
                    licence=base.licence,
                    audio_encoder=base.audio_encoder,
                    generated=False,
                    defaults=MappingProxyType(defaults),
                    components=MappingProxyType(components),
                    preset_of=base.name,
                )  # fmt: skip
            )
        return specs

    def text(self, raw: dict[str, Any], key: str, where: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def defaults(self, where: str, raw: dict[str, Any]) -> dict[str, Any]:
        for key, value in raw.items():
            if not isinstance(value, str | int | float | bool):
                raise self.fail(f"{where}.defaults.{key}", "must be a string, number or boolean")
        return dict(raw)

    def components(self, where: str, raw: dict[str, Any], shared: dict[str, Any]) -> dict[str, ComponentSpec]:
        components = {}
        for slot, value in raw.items():
            if slot not in COMPONENT_NAMES:
                raise self.fail(f"{where}.components.{slot}", f"is not a component name {COMPONENT_NAMES}")
            if isinstance(value, str):
                if value not in shared:
                    raise self.fail(
                        f"{where}.components.{slot}", f"refers to unknown shared component {value!r}"
                    )
                components[slot] = self.component(slot, f"shared.{value}", shared[value])
            else:
                components[slot] = self.component(slot, f"{where}.components.{slot}", value)
        # Canonical slot order, whatever order TOML tables and inline keys came in.
        return {slot: components[slot] for slot in COMPONENT_NAMES if slot in components}

    def component(self, slot: str, where: str, raw: Any) -> ComponentSpec:
        raw = self.known_keys(raw, where, _COMPONENT_KEYS, "a table or the key of a shared component")
        repo = self.text(raw, "repo", where)
        if not _REPO_ID.fullmatch(repo):
            raise self.fail(f"{where}.repo", f"must look like 'owner/name', got {repo!r}")
        revision = self.text(raw, "revision", where)
        if revision != MAIN_BRANCH and not _COMMIT.fullmatch(revision):
            raise self.fail(f"{where}.revision", f"must be a 40-hex commit or 'main', got {revision!r}")
        subfolder = raw.get("subfolder", "")
        if not isinstance(subfolder, str) or subfolder.startswith("/") or subfolder.endswith("/"):
            raise self.fail(f"{where}.subfolder", "must be a relative folder without surrounding '/'")
        if ".." in subfolder.split("/"):
            raise self.fail(f"{where}.subfolder", "must stay inside the repo")
        format_ = raw.get("format")
        if format_ not in FORMATS:
            raise self.fail(f"{where}.format", f"must be one of {FORMATS}, got {format_!r}")
        return ComponentSpec(
            name=slot,
            repo=repo,
            revision=revision,
            subfolder=subfolder,
            patterns=self.patterns(raw, "patterns", where, required=True),
            exclude=self.patterns(raw, "exclude", where, required=False),
            size_bytes=self.size(raw, where),
            format=format_,
            sha256=MappingProxyType(self.digests(raw.get("sha256", {}), where)),
        )

    def patterns(self, raw: dict[str, Any], key: str, where: str, *, required: bool) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.fail(f"{where}.{key}", "must be a list of non-empty strings")
        if required and not value:
            raise self.fail(f"{where}.{key}", "must list at least one pattern")
        return tuple(value)

    def size(self, raw: dict[str, Any], where: str) -> int:
        if ("size_gb" in raw) == ("size_bytes" in raw):
            raise self.fail(where, "needs exactly one of size_gb or size_bytes")
        if "size_gb" in raw:
            value = raw["size_gb"]
            size = (
                int(round(value * 1e9))
                if isinstance(value, int | float) and not isinstance(value, bool)
                else 0
            )
        else:
            value = raw["size_bytes"]
            size = value if isinstance(value, int) and not isinstance(value, bool) else 0
        if size <= 0:
            raise self.fail(where, f"size must be a positive number, got {value!r}")
        return size

    def digests(self, raw: Any, where: str) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.fail(f"{where}.sha256", "must be a table of file -> digest")
        for file, digest in raw.items():
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise self.fail(f"{where}.sha256.{file}", "must be 64 lowercase hex digits")
        return dict(raw)

    def check_one_revision_per_repo(self, where: str, components: dict[str, ComponentSpec]) -> None:
        # fetch --dir keeps one folder per repo, so one model cannot mix revisions of a repo.
        revisions: dict[str, str] = {}
        for component in components.values():
            if revisions.setdefault(component.repo, component.revision) != component.revision:
                raise self.fail(where, f"uses two revisions of {component.repo}")
