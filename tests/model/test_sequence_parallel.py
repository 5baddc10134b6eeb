"""Ulysses sequence parallel on CPU: two gloo processes give the single-process output."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from .conftest import make_inputs

WORKER = Path(__file__).with_name("sequence_parallel_worker.py")


def _run_two_ranks(checkpoint: Path, inputs: dict, tmp_path: Path) -> torch.Tensor:
    torch.save(inputs, tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    for _attempt in range(2):
        done = subprocess.run(
            [*command, str(WORKER), str(checkpoint), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
            env=env | {"OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        # A rank killed by a signal (gloo's rendezvous aborting on a busy machine, seen once in
        # ~20 suite runs) is the harness failing, not the model: try once more.
        if "Signal" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(tmp_path / "out.pt", weights_only=True)


def test_two_ranks_match_one_process(tiny_sources, tiny_model, tmp_path):
    # 3 latent frames x 6 tokens split 9 + 9: rank 1 starts in the middle of frame 1, so its audio
    # attention must locate frames from global token indices.
    inputs = make_inputs(batch=2)
    with torch.no_grad():
        expected = tiny_model(**inputs, return_dict=False)[0]
    output = _run_two_ranks(tiny_sources[0], inputs, tmp_path)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6)
