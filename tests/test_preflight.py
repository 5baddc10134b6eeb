"""Device, dtype and attention choices judged without torch: when a GPU cannot be there, and why."""

import pytest

from skyaudio_cli.errors import InputError
from skyaudio_cli.pipeline import preflight


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """`machine(torch=..., gpu_node=...)`: a CUDA torch build and/or a GPU device node, or not."""

    def make(*, torch: str = "2.13.0", gpu_node: bool = True) -> None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.setattr(preflight.sys, "platform", "linux")
        monkeypatch.setattr(preflight, "version", lambda package: torch)
        node = tmp_path / "nvidia0"
        if gpu_node:
            node.touch()
        monkeypatch.setattr(preflight, "GPU_DEVICE_NODES", (str(tmp_path / "nvidia[0-9]*"),))

    return make


def test_a_gpu_may_be_there_with_a_cuda_build_and_a_device_node(machine):
    machine()
    assert preflight.cuda_unavailable_reason() is None
    preflight.check_runtime("cuda", "fp16", "sdpa")  # torch decides later


@pytest.mark.parametrize("hidden", ["", "-1", " "])
def test_cuda_visible_devices_can_hide_every_gpu(machine, monkeypatch, hidden):
    machine()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert preflight.cuda_unavailable_reason() == f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU"


def test_a_cpu_build_of_torch_sees_no_gpu(machine):
    machine(torch="2.13.0+cpu")
    assert preflight.cuda_unavailable_reason() == "the installed PyTorch 2.13.0+cpu is a CPU-only build"


def test_device_nodes_are_looked_for_on_linux_only(machine, monkeypatch):
    machine(gpu_node=False)
    monkeypatch.setattr(preflight.sys, "platform", "win32")
    assert preflight.cuda_unavailable_reason() is None


def test_no_device_node_means_no_gpu(machine):
    machine(gpu_node=False)
    assert "no GPU device" in preflight.cuda_unavailable_reason()
    with pytest.raises(InputError, match=r"^--device cuda: no CUDA GPU is visible \(this machine has no GPU"):
        preflight.check_runtime("cuda", "bf16", "auto")


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_fp16_and_gpu_attention_are_refused_where_the_job_would_run_on_the_cpu(machine, monkeypatch, device):
    machine(gpu_node=False)
    with pytest.raises(InputError, match="--dtype fp16: float16 is not supported on CPU"):
        preflight.check_runtime(device, "fp16", "auto")
    monkeypatch.setattr(preflight, "importable", lambda module: True)
    with pytest.raises(InputError, match="--attention flash: needs a CUDA device"):
        preflight.check_runtime(device, "bf16", "flash")
    preflight.check_runtime(device, "bf16", "sdpa")


def test_a_missing_attention_package_names_how_to_install_it(machine, monkeypatch):
    machine()
    monkeypatch.setattr(preflight, "importable", lambda module: module != "flash_attn")
    preflight.check_runtime("cuda", "bf16", "xformers")
    with pytest.raises(
        InputError,
        match=r"--attention flash: the flash_attn package is not installed \(pip install flash-attn\)",
    ):
        preflight.check_runtime("cuda", "bf16", "flash")
