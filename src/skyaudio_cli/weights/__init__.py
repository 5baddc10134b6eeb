"""Model weights: the manifest of families, Hub downloads, local resolution and verification."""

from skyaudio_cli.weights.fetch import fetch_model
from skyaudio_cli.weights.local_folder import LOCAL_MODEL_FILE, ResolvedModel, write_local_model
from skyaudio_cli.weights.manifest import (
    COMPONENT_NAMES,
    ComponentSpec,
    Manifest,
    ModelSpec,
    get_manifest,
    get_model,
    load_manifest,
    total_size,
)
from skyaudio_cli.weights.resolve import resolve_model
from skyaudio_cli.weights.verify import FileProblem, VerifyReport, verify_model

__all__ = [
    "COMPONENT_NAMES",
    "LOCAL_MODEL_FILE",
    "ComponentSpec",
    "FileProblem",
    "Manifest",
    "ModelSpec",
    "ResolvedModel",
    "VerifyReport",
    "fetch_model",
    "get_manifest",
    "get_model",
    "load_manifest",
    "resolve_model",
    "total_size",
    "verify_model",
    "write_local_model",
]
