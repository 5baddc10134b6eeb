"""--shard K/N: shards 0..N-1 of one manifest cover every job exactly once, blank lines or not."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyaudio_cli.batch.manifest import read_manifest
from skyaudio_cli.batch.plan import Shard, plan_batch
from skyaudio_cli.errors import InputError


@given(
    blank_after=st.lists(st.booleans(), max_size=40),
    shards=st.integers(min_value=1, max_value=9),
)
def test_shards_partition_the_manifest(tmp_path_factory, blank_after, shards):
    # Jobs whose inputs are missing fail validation in microseconds and still land in one shard.
    text = "".join(
        json.dumps({"task": "generate", "audio": f"missing{n}.wav", "output": f"o{n}.mp4"})
        + "\n"
        + ("\n" if blank else "")
        for n, blank in enumerate(blank_after)
    )
    manifest = tmp_path_factory.mktemp("shard") / "jobs.jsonl"
    manifest.write_text(text)
    lines = read_manifest(str(manifest))

    covered = []
    for k in range(shards):
        plan = plan_batch(lines, shard=Shard(k, shards), resume=False, device=None)
        covered += plan.indices
        assert all(index % shards == k for index in plan.indices)
    assert sorted(covered) == list(range(len(blank_after)))


def test_three_shards_of_twenty_jobs():
    picked = [[index for index in range(20) if Shard(k, 3).selects(index)] for k in range(3)]
    assert picked == [list(range(0, 20, 3)), list(range(1, 20, 3)), list(range(2, 20, 3))]


@pytest.mark.parametrize(
    ("text", "message"), [("3/3", "between 0 and N-1"), ("1/0", "K/N"), ("a/b", "K/N"), ("2", "K/N")]
)
def test_bad_shard_is_an_input_error(text, message):
    with pytest.raises(InputError, match=message):
        Shard.parse(text)
