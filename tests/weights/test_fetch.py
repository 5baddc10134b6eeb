"""Downloads against the local fake Hub; resolution afterwards without any network."""

from __future__ import annotations

import json

import pytest

from skyaudio_cli.errors import RuntimeFailure, WeightsError
from skyaudio_cli.weights import LOCAL_MODEL_FILE, fetch_model, load_manifest, resolve_model

from .conftest import AUDIO_WEIGHTS, HubSetup

DIT_FILES = [
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
]


def test_fetch_into_cache_then_resolve_offline(hub_setup: HubSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched = hub_setup.fetch()
    hub_setup.stop_network()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)

    resolved = resolve_model("fake-a2v", cache_dir=hub_setup.cache_dir, manifest=hub_setup.manifest)

    assert resolved.components == fetched.components
    assert resolved.family == "fake-a2v" and resolved.audio_encoder == "wav2vec2" and resolved.root is None
    dit = resolved.components["transformer"]
    assert sorted(path.name for path in dit.iterdir()) == DIT_FILES  # sub-folders and README excluded
    assert (dit / "model-00002-of-00002.safetensors").read_bytes() == hub_setup.repos["org/dit"][
        "model-00002-of-00002.safetensors"
    ]
    # A component made of one named file resolves to that file, the others to their folder.
    assert resolved.components["audio_encoder"].read_bytes() == AUDIO_WEIGHTS
    assert (resolved.components["vae"] / "config.json").read_bytes() == b'{"z_dim": 4}'
    assert sorted(path.name for path in resolved.components["tokenizer"].iterdir()) == [
        "special_tokens_map.json",
        "tokenizer.json",
    ]


def test_fetch_dir_makes_a_self_describing_folder(hub_setup: HubSetup, tmp_path) -> None:
    folder = tmp_path / "models" / "fake"
    hub_setup.fetch(local_dir=folder)
    hub_setup.stop_network()

    description = json.loads((folder / LOCAL_MODEL_FILE).read_text())
    assert description["family"] == "fake-a2v" and description["audio_encoder"] == "wav2vec2"
    assert description["components"] == {
        "transformer": "org--dit",
        "vae": "org--shared/vae",
        "text_encoder": "org--shared/text_encoder",
        "tokenizer": "org--shared/tokenizer",
        "audio_encoder": "org--audio/w2v/model.bin",
    }
    assert description["files"]["org--audio/w2v/model.bin"] == len(AUDIO_WEIGHTS)
    assert "org--audio/w2v/other.bin" not in description["files"]

    # The packaged manifest has never heard of "fake-a2v": the folder alone is enough.
    resolved = resolve_model(folder, manifest=load_manifest())
    assert resolved.root == folder.resolve()
    assert resolved.components["audio_encoder"].read_bytes() == AUDIO_WEIGHTS
    assert (
        sorted(path.name for path in resolved.components["transformer"].iterdir() if path.is_file())
        == DIT_FILES
    )


def test_connection_dropped_midway_is_resumed_with_a_range_request(hub_setup: HubSetup) -> None:
    hub_setup.hub.drop_midway["w2v/model.bin"] = 1

    resolved = hub_setup.fetch()

    first, resumed = hub_setup.hub.downloads_of("w2v/model.bin")
    assert first is None
    resumed_from = int(resumed.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= len(AUDIO_WEIGHTS) // 2
    assert resolved.components["audio_encoder"].read_bytes() == AUDIO_WEIGHTS


def test_failed_fetch_is_completed_by_the_next_one_without_refetching(hub_setup: HubSetup) -> None:
    shard = "model-00002-of-00002.safetensors"
    hub_setup.hub.fail_with_500[shard] = 100

    with pytest.raises(RuntimeFailure) as failure:
        hub_setup.fetch()
    message = str(failure.value)
    assert "\n" not in message and "component transformer from org/dit" in message

    hub_setup.hub.fail_with_500.clear()
    resolved = hub_setup.fetch()

    assert (resolved.components["transformer"] / shard).read_bytes() == hub_setup.repos["org/dit"][shard]
    assert len(hub_setup.hub.downloads_of("model-00001-of-00002.safetensors")) == 1


def test_missing_weights_name_the_fetch_command_and_size(hub_setup: HubSetup) -> None:
    with pytest.raises(WeightsError) as missing:
        resolve_model("fake-a2v", cache_dir=hub_setup.cache_dir, manifest=hub_setup.manifest)
    assert str(missing.value) == (
        "weights for 'fake-a2v' are not downloaded (components transformer, vae, text_encoder, tokenizer, "
        "audio_encoder, ~38 GB); run: skyaudio weights fetch fake-a2v"
    )


def test_only_the_missing_component_is_reported(hub_setup: HubSetup) -> None:
    resolved = hub_setup.fetch()
    resolved.components["audio_encoder"].unlink()

    with pytest.raises(
        WeightsError, match=r"\(component audio_encoder, ~25 MB\); run: skyaudio weights fetch"
    ):
        resolve_model("fake-a2v", cache_dir=hub_setup.cache_dir, manifest=hub_setup.manifest)


def test_offline_mode_refuses_to_fetch(hub_setup: HubSetup, offline: None) -> None:
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE is set"):
        hub_setup.fetch()
    assert hub_setup.hub.requests == []


def test_unknown_repo_is_a_weights_error(hub_setup: HubSetup) -> None:
    with pytest.raises(WeightsError, match=r"component transformer from org/nothing-here\): repo not found"):
        fetch_model(
            "missing-repo",
            cache_dir=hub_setup.cache_dir,
            endpoint=hub_setup.endpoint,
            progress=False,
            manifest=hub_setup.manifest,
        )
