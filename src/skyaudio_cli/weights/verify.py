"""Check that a model's files are all there and intact, without the network.

Expected files and sizes come from the tree listing huggingface_hub caches at download time (HF
cache) or from the "files" of skyaudio_model.json (model folders). Every .safetensors file is also
checked against its own header (the data must end exactly where the header says), which catches
truncated files even where no listing exists, and files with a sha256 in the manifest are hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from skyaudio_cli.weights import hub
from skyaudio_cli.weights.local_folder import ResolvedModel, read_local_model
from skyaudio_cli.weights.manifest import Manifest, ModelSpec, get_manifest, human_size, total_size
from skyaudio_cli.weights.resolve import as_model_folder, hub_model

_HASH_CHUNK = 8 << 20
_MAX_SAFETENSORS_HEADER = 100 << 20


@dataclass(frozen=True)
class FileProblem:
    component: str
    path: str
    problem: str


# Problems `weights fetch` cures: it downloads what is absent and resumes what was interrupted.
NOT_DOWNLOADED, MISSING, NO_MATCH = "not downloaded", "missing", "no file matches"
_FETCHABLE = (NOT_DOWNLOADED, MISSING, NO_MATCH)


@dataclass(frozen=True)
class VerifyReport:
    model: str
    family: str
    files_checked: int
    problems: tuple[FileProblem, ...]
    # The command that fetches what is missing, with its size; None when nothing is, or when no
    # command can (a folder not made by `fetch --dir`).
    remedy: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"{self.model}: {self.files_checked} files OK"
        first = self.problems[0]
        where = f"{first.component} {first.path}"
        summary = f"{self.model}: {len(self.problems)} problem(s), first: {where}: {first.problem}"
        return f"{summary}; {self.remedy}" if self.remedy else summary

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "family": self.family,
            "ok": self.ok,
            "files_checked": self.files_checked,
            "problems": [
                {"component": problem.component, "path": problem.path, "problem": problem.problem}
                for problem in self.problems
            ],
            "remedy": self.remedy,
        }


@dataclass(frozen=True)
class _ExpectedFile:
    component: str
    display_path: str
    path: Path
    size: int | None
    sha256: str | None


def verify_model(
    name_or_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    manifest: Manifest | None = None,
) -> VerifyReport:
    """Presence, size and integrity of every expected file of a family (HF cache) or model folder."""
    manifest = get_manifest(manifest)
    folder = as_model_folder(name_or_path)
    if folder is not None:
        resolved = read_local_model(folder, manifest)
        spec = manifest.models.get(resolved.family)
        expected = _folder_files(resolved, spec)
        problems: list[FileProblem] = []
        family = resolved.family
        fetch = f"skyaudio weights fetch {family} --dir {resolved.root}"
    else:
        spec = hub_model(manifest, os.fspath(name_or_path))
        expected, problems = _cache_files(spec, Path(cache_dir) if cache_dir is not None else None)
        family = spec.name
        fetch = f"skyaudio weights fetch {family}"
    problems.extend(problem for item in expected if (problem := _check(item)) is not None)
    fetchable = spec is not None and not spec.generated
    return VerifyReport(
        model=os.fspath(name_or_path),
        family=family,
        files_checked=len(expected),
        problems=tuple(problems),
        remedy=_remedy(spec, problems, fetch) if fetchable else None,
    )


def _remedy(spec: ModelSpec, problems: list[FileProblem], fetch: str) -> str | None:
    """`run: <fetch command> (components ..., ~size)` for the components with files missing."""
    missing = [c for c in spec.components.values() if any(
        p.component == c.name and p.problem in _FETCHABLE for p in problems
    )]  # fmt: skip
    if not missing:
        return None
    names = ", ".join(component.name for component in missing)
    return f"run: {fetch} (fetches {names}: up to {human_size(total_size(missing))})"


def _cache_files(spec: ModelSpec, cache_dir: Path | None) -> tuple[list[_ExpectedFile], list[FileProblem]]:
    expected: list[_ExpectedFile] = []
    problems: list[FileProblem] = []
    for component in spec.components.values():
        snapshot, _ = hub.find_snapshot(component, cache_dir)
        if snapshot is None:
            problems.append(FileProblem(component.name, component.repo, NOT_DOWNLOADED))
            continue
        sizes = hub.expected_files(component, cache_dir=cache_dir)
        if sizes is None:
            # No listing cached: check what is there, and that every pattern found something.
            sizes = dict.fromkeys(hub.present_files(snapshot, component))
            problems.extend(
                FileProblem(component.name, pattern, NO_MATCH)
                for pattern in hub.unmatched_patterns(snapshot, component)
            )
        digests = {component.repo_path(file): digest for file, digest in component.sha256.items()}
        expected.extend(
            _ExpectedFile(component.name, path, snapshot / path, size, digests.get(path))
            for path, size in sorted(sizes.items())
        )
    return expected, problems


def _folder_files(resolved: ResolvedModel, family: ModelSpec | None) -> list[_ExpectedFile]:
    root = resolved.root
    assert root is not None, "model folders always have a root"
    digests = _folder_digests(family)
    owners = {path: name for name, path in resolved.components.items()}
    if resolved.expected_sizes:
        listed = resolved.expected_sizes.items()
    else:
        listed = [(path, None) for path in _files_under(root, resolved.components.values())]
    return [
        _ExpectedFile(_owner(root / relative, owners), relative, root / relative, size, digests.get(relative))
        for relative, size in sorted(listed)
    ]


def _folder_digests(family: ModelSpec | None) -> dict[str, str]:
    """Manifest digests keyed by their path inside a `fetch --dir` folder."""
    if family is None:
        return {}
    return {
        f"{hub.local_repo_folder(component.repo)}/{component.repo_path(file)}": digest
        for component in family.components.values()
        for file, digest in component.sha256.items()
    }


def _files_under(root: Path, component_paths: Iterable[Path]) -> list[str]:
    files = set()
    for location in component_paths:
        candidates = [location] if location.is_file() else location.rglob("*")
        files.update(
            path.relative_to(root).as_posix()
            for path in candidates
            if path.is_file() and ".cache" not in path.relative_to(root).parts
        )
    return sorted(files)


def _owner(path: Path, owners: dict[Path, str]) -> str:
    for location, name in owners.items():
        if path == location or path.is_relative_to(location):
            return name
    return "-"


def _check(item: _ExpectedFile) -> FileProblem | None:
    problem = _file_problem(item)
    return FileProblem(item.component, item.display_path, problem) if problem else None


def _file_problem(item: _ExpectedFile) -> str | None:
    if not item.path.is_file():
        return MISSING
    actual = item.path.stat().st_size
    if item.size is not None and actual != item.size:
        return f"size {actual} bytes, expected {item.size} (incomplete or corrupt download)"
    if item.path.suffix == ".safetensors":
        problem = _safetensors_problem(item.path, actual)
        if problem:
            return problem
    if item.sha256 is not None and _sha256(item.path) != item.sha256:
        return "sha256 does not match the manifest"
    return None


def _safetensors_problem(path: Path, size: int) -> str | None:
    """Whether the file ends exactly where its header says the tensor data ends."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return "truncated safetensors file (no header)"
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > min(size - 8, _MAX_SAFETENSORS_HEADER):
            return "truncated or invalid safetensors header"
        try:
            header = json.loads(handle.read(header_length))
            data_end = max(
                (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                default=0,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "invalid safetensors header"
    expected = 8 + header_length + data_end
    if size != expected:
        return f"safetensors size {size} bytes, header expects {expected} (truncated or corrupt)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
