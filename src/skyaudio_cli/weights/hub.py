"""The only module that talks to huggingface_hub: cache look-ups and downloads of manifest components.

huggingface_hub is imported inside the functions (the CLI must start fast) and its exceptions are
turned into our one-line errors here. It honours HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_ENDPOINT and
HF_HUB_OFFLINE; interrupted transfers are resumed with HTTP Range requests by huggingface_hub itself.
"""

from __future__ import annotations

from pathlib import Path

from skyaudio_cli.errors import RuntimeFailure, WeightsError
from skyaudio_cli.weights.manifest import ComponentSpec


def local_repo_folder(repo: str) -> str:
    """Folder name of a repo inside a `fetch --dir` folder (one folder per repo)."""
    return repo.replace("/", "--")


def component_location(snapshot: Path, component: ComponentSpec) -> Path:
    """What a loader gets for the component: its single file, or the folder holding its files."""
    folder = snapshot / component.subfolder if component.subfolder else snapshot
    return folder / component.single_file if component.single_file else folder


def is_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def find_snapshot(component: ComponentSpec, cache_dir: Path | None) -> tuple[Path | None, bool]:
    """(snapshot folder of the HF cache for `component` or None, whether it holds all its files)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        snapshot = Path(
            snapshot_download(
                component.repo,
                revision=component.revision,
                cache_dir=cache_dir,
                allow_patterns=component.allow_patterns,
                ignore_patterns=component.ignore_patterns,
                local_files_only=True,
            )
        )
    except IncompleteSnapshotError as incomplete:
        return Path(incomplete.snapshot_path), False
    except LocalEntryNotFoundError:
        return None, False
    # Without a cached tree listing (snapshot made by an older huggingface_hub) an interrupted
    # snapshot looks complete; requiring every pattern to match a file catches the usual case.
    return snapshot, not unmatched_patterns(snapshot, component)


def expected_files(
    component: ComponentSpec, *, cache_dir: Path | None = None, local_dir: Path | None = None
) -> dict[str, int] | None:
    """Repo path -> size of the component's files, from the tree listing cached at download time.

    None when no listing is cached (nothing downloaded yet, or by an older huggingface_hub).
    """
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError
    from huggingface_hub.utils import filter_repo_objects

    try:
        tree = get_cached_repo_tree(
            component.repo, revision=component.revision, cache_dir=cache_dir, local_dir=local_dir
        )
    except CachedRepoTreeNotFoundError:
        return None
    sizes = {entry.path: entry.size for entry in tree}
    wanted = filter_repo_objects(
        sizes, allow_patterns=component.allow_patterns, ignore_patterns=component.ignore_patterns
    )
    return {path: sizes[path] for path in wanted}


def download_component(
    component: ComponentSpec,
    *,
    model: str,
    cache_dir: Path | None,
    local_dir: Path | None,
    token: str | None,
    endpoint: str | None,
    progress: bool,
) -> Path:
    """Download (or complete) one component; returns the snapshot folder (or `local_dir`)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                component.repo,
                revision=component.revision,
                cache_dir=cache_dir,
                local_dir=local_dir,
                allow_patterns=component.allow_patterns,
                ignore_patterns=component.ignore_patterns,
                token=token,
                endpoint=endpoint,
                tqdm_class=None if progress else _silent_tqdm(),
            )
        )
    except Exception as error:  # every failure (HTTP, network, disk) becomes one line
        raise _download_error(error, component, model) from None


def ensure_component(
    component: ComponentSpec, *, what: str, cache_dir: Path | None = None, endpoint: str | None = None
) -> Path:
    """Where `component` is in the Hugging Face cache, downloading it first when it is missing or
    incomplete (`what` names it in messages: "--lora owner/name/file"); WeightsError when it is not
    there and HF_HUB_OFFLINE is set."""
    snapshot, complete = find_snapshot(component, cache_dir)
    if snapshot is None or not complete:
        if is_offline():
            raise WeightsError(f"{what}: not in the Hugging Face cache and HF_HUB_OFFLINE is set")
        snapshot = download_component(
            component, model=what, cache_dir=cache_dir, local_dir=None, token=None, endpoint=endpoint,
            progress=False,
        )  # fmt: skip
    return component_location(snapshot, component)


def present_files(snapshot: Path, component: ComponentSpec) -> list[str]:
    """Repo paths of the component's files that exist under `snapshot`."""
    from huggingface_hub.utils import filter_repo_objects

    present = [path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file()]
    return list(
        filter_repo_objects(
            present, allow_patterns=component.allow_patterns, ignore_patterns=component.ignore_patterns
        )
    )


def unmatched_patterns(snapshot: Path, component: ComponentSpec) -> list[str]:
    """The component's patterns that match no file under `snapshot`."""
    from huggingface_hub.utils import filter_repo_objects

    present = present_files(snapshot, component)
    return [
        pattern
        for pattern in component.allow_patterns
        if not any(filter_repo_objects(present, allow_patterns=[pattern]))
    ]


def _silent_tqdm() -> type:
    from huggingface_hub.utils import tqdm

    class SilentTqdm(tqdm):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentTqdm


def _download_error(error: Exception, component: ComponentSpec, model: str) -> Exception:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"cannot download '{model}' (component {component.name} from {component.repo})"
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, GatedRepoError):
        return WeightsError(
            f"{what}: the repo is gated; accept its licence on the Hub and set HF_TOKEN or --token"
        )
    if isinstance(error, RepositoryNotFoundError):
        return WeightsError(f"{what}: repo not found or private; set HF_TOKEN or --token if you have access")
    if isinstance(error, RevisionNotFoundError):
        return WeightsError(f"{what}: revision {component.revision} not found")
    if isinstance(error, HfHubHTTPError):
        return RuntimeFailure(f"{what}: {first_line}")
    if isinstance(error, LocalEntryNotFoundError):
        return RuntimeFailure(f"{what}: the Hub cannot be reached; check the network or HF_ENDPOINT")
    if isinstance(error, OSError):
        return RuntimeFailure(f"{what}: {first_line}")
    return RuntimeFailure(f"{what}: {type(error).__name__}: {first_line}")
