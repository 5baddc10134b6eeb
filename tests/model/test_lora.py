"""LoRA adapters on the tiny DiTs of every family: formats, fusion numerics, exact restore, strictness.

Expected weights and forwards are computed here from the LoRA formula (W + scale * alpha / rank * B A)
and from the original module names written out by hand, not through the code under test.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from skyaudio_cli.errors import WeightsError
from skyaudio_cli.model.acceleration import FP8_STORAGE, Acceleration, load_accelerated_transformer
from skyaudio_cli.model.checkpoint import load_transformer, set_adapters
from skyaudio_cli.model.tiny import write_tiny_humo_transformer, write_tiny_transformer

from .conftest import make_inputs

RANK = 3
ALPHA = 1.5
SCALE = 0.8

# (our module, the release's original module) for Linear layers: self/cross attention, FFN, the
# image keys, the per-block audio attention and the audio projection.
A2V_LINEARS = [
    ("blocks.0.attn1.to_q", "blocks.0.self_attn.q"),
    ("blocks.1.ffn.net.0.proj", "blocks.1.ffn.0"),
    ("blocks.1.attn2.add_k_proj", "blocks.1.cross_attn.k_img"),
    ("blocks.0.audio_cross_attn.kv_linear", "blocks.0.audio_cross_attn.kv_linear"),
    ("audio_proj.proj1_vf", "audio_proj.proj1_vf"),
    ("proj_out", "head.head"),
]
HUMO_LINEARS = [
    ("blocks.1.attn1.to_out.0", "blocks.1.self_attn.o"),
    ("blocks.0.attn2.to_v", "blocks.0.cross_attn.v"),
    ("blocks.0.audio_cross_attn.q", "blocks.0.audio_cross_attn_wrapper.audio_cross_attn.q"),
    ("audio_proj.proj2", "audio_proj.audio_proj_glob_2.layer"),
]
# (our parameter, the original full-delta key): the cross-attention norm (original norm3), a bias,
# a block's modulation and the audio input norm.
A2V_DIFFS = [
    ("blocks.0.norm2.weight", "blocks.0.norm3.diff"),
    ("blocks.0.attn1.to_q.bias", "blocks.0.self_attn.q.diff_b"),
    ("blocks.1.scale_shift_table", "blocks.1.diff_m"),
    ("blocks.1.norm_x.weight", "blocks.1.norm_x.diff"),
]
HUMO_DIFFS = [
    *A2V_DIFFS[:3],
    ("blocks.1.norm_x.weight", "blocks.1.audio_cross_attn_wrapper.norm1_audio.diff"),
]
FORMATS = ("peft", "original", "original-lora-a-b", "kohya", "diff")


def _write_family(family: str, folder: Path) -> list[Path] | Path:
    if family == "skyreels-v3-a2v":
        return write_tiny_transformer(folder)
    if family == "infinitetalk":
        return write_tiny_transformer(folder, adapter_split=True)
    return write_tiny_humo_transformer(folder, in_channels=36 if family == "humo-17b" else 16)


FAMILIES = ("skyreels-v3-a2v", "infinitetalk", "humo-17b", "humo-1.7b")


@pytest.fixture(scope="module")
def family_models(tmp_path_factory) -> dict[str, tuple]:
    """family -> (checkpoint sources, fp32 state dict of the model without adapters)."""
    models = {}
    for family in FAMILIES:
        sources = _write_family(family, tmp_path_factory.mktemp(family))
        models[family] = (sources, load_transformer(sources, dtype=torch.float32).state_dict())
    return models


def _pairs(
    state: dict[str, torch.Tensor], linears, seed: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Random (up, down) per our module, sized from the model's weights."""
    generator = torch.Generator().manual_seed(seed)
    pairs = {}
    for ours, _ in linears:
        out_features, in_features = state[f"{ours}.weight"].shape
        pairs[ours] = (
            torch.randn(out_features, RANK, generator=generator),
            torch.randn(RANK, in_features, generator=generator) / in_features**0.5,
        )
    return pairs


def _lora_tensors(linears, pairs, layout: str) -> dict[str, torch.Tensor]:
    tensors = {}
    for ours, original in linears:
        up, down = pairs[ours]
        if layout == "peft":
            keys = (f"transformer.{ours}.lora_B.weight", f"transformer.{ours}.lora_A.weight", None)
        elif layout == "original":
            stem = f"diffusion_model.{original}"
            keys = (f"{stem}.lora_up.weight", f"{stem}.lora_down.weight", f"{stem}.alpha")
        elif layout == "original-lora-a-b":
            stem = f"diffusion_model.{original}"
            keys = (f"{stem}.lora_B.weight", f"{stem}.lora_A.weight", f"{stem}.alpha")
        else:  # kohya: the module path with _ for .
            stem = "lora_unet_" + original.replace(".", "_")
            keys = (f"{stem}.lora_up.weight", f"{stem}.lora_down.weight", f"{stem}.alpha")
        tensors[keys[0]], tensors[keys[1]] = up, down
        if keys[2] is not None:
            tensors[keys[2]] = torch.tensor(ALPHA)
    return tensors


def _expected_factor(layout: str) -> float:
    # peft/diffusers files carry no alpha: the factor is 1 (alpha = rank).
    return 1.0 if layout == "peft" else ALPHA / RANK


def _write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path))
    return path


@pytest.mark.parametrize("layout", FORMATS)
@pytest.mark.parametrize("family", FAMILIES)
def test_each_format_loads_into_each_family(family, layout, family_models, tmp_path):
    sources, base = family_models[family]
    humo = family.startswith("humo")
    linears, diffs = (HUMO_LINEARS, HUMO_DIFFS) if humo else (A2V_LINEARS, A2V_DIFFS)
    expected = {}
    if layout == "diff":
        generator = torch.Generator().manual_seed(5)
        deltas = {ours: torch.randn(base[ours].shape, generator=generator) for ours, _ in diffs}
        tensors = {f"diffusion_model.{original}": deltas[ours] for ours, original in diffs}
        expected = {ours: base[ours] + SCALE * deltas[ours] for ours, _ in diffs}
    else:
        pairs = _pairs(base, linears, seed=1)
        tensors = _lora_tensors(linears, pairs, layout)
        factor = _expected_factor(layout)
        for ours, (up, down) in pairs.items():
            expected[f"{ours}.weight"] = base[f"{ours}.weight"] + SCALE * factor * (up @ down)
    lora = _write(tmp_path / "adapter.safetensors", tensors)

    fused = load_transformer(sources, dtype=torch.float32, adapters=[(lora, SCALE)]).state_dict()

    for name, value in fused.items():
        if name in expected:
            torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, base[name]), name


def _unfused_forward(model, pairs, factor: float, inputs: dict) -> torch.Tensor:
    """The model with LoRA as separate branches, y = W x + scale * factor * B (A x), via hooks."""
    modules = dict(model.named_modules())
    handles = []
    for ours, (up, down) in pairs.items():

        def branch(module, args, output, up=up, down=down):
            return output + SCALE * factor * F.linear(F.linear(args[0], down), up)

        handles.append(modules[ours].register_forward_hook(branch))
    try:
        with torch.no_grad():
            return model(**inputs, return_dict=False)[0]
    finally:
        for handle in handles:
            handle.remove()


def _humo_inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    text = torch.zeros(1, 512, 32)
    text[:, :5] = torch.randn(1, 5, 32, generator=generator)
    return {
        "hidden_states": torch.randn(1, 36, 3, 4, 6, generator=generator),
        "timestep": torch.tensor([981.0]),
        "encoder_hidden_states": text,
        "audio_embeds": torch.randn(1, 3, 8, 5, 16, generator=generator),
    }


@pytest.mark.parametrize("family", ["skyreels-v3-a2v", "humo-17b"])
def test_fused_forward_equals_the_unfused_lora_forward(family, family_models, tmp_path):
    sources, base = family_models[family]
    linears = HUMO_LINEARS if family.startswith("humo") else A2V_LINEARS
    inputs = _humo_inputs() if family.startswith("humo") else make_inputs(batch=1)
    pairs = _pairs(base, linears, seed=2)
    lora = _write(tmp_path / "adapter.safetensors", _lora_tensors(linears, pairs, "original"))

    unfused = _unfused_forward(load_transformer(sources, dtype=torch.float32), pairs, ALPHA / RANK, inputs)
    fused_model = load_transformer(sources, dtype=torch.float32, adapters=[(lora, SCALE)])
    with torch.no_grad():
        fused = fused_model(**inputs, return_dict=False)[0]

    plain = load_transformer(sources, dtype=torch.float32)
    with torch.no_grad():
        without = plain(**inputs, return_dict=False)[0]
    assert (unfused - without).abs().max() > 1e-2  # the adapter really changes the output
    torch.testing.assert_close(fused, unfused, rtol=0, atol=1e-5)


def test_two_loras_with_scales_add_up(family_models, tmp_path):
    sources, base = family_models["skyreels-v3-a2v"]
    first_pairs = _pairs(base, A2V_LINEARS[:3], seed=3)
    second_pairs = _pairs(base, A2V_LINEARS[2:5], seed=4)  # overlaps the first on add_k_proj
    first = _write(tmp_path / "first.safetensors", _lora_tensors(A2V_LINEARS[:3], first_pairs, "original"))
    second = _write(tmp_path / "second.safetensors", _lora_tensors(A2V_LINEARS[2:5], second_pairs, "peft"))

    fused = load_transformer(
        sources, dtype=torch.float32, adapters=[(first, 0.5), (second, -1.25)]
    ).state_dict()

    expected = {name: value.clone() for name, value in base.items()}
    for pairs, scale, factor in ((first_pairs, 0.5, ALPHA / RANK), (second_pairs, -1.25, 1.0)):
        for ours, (up, down) in pairs.items():
            expected[f"{ours}.weight"] += scale * factor * (up @ down)
    for name, value in fused.items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6)


@pytest.fixture
def two_adapters(family_models, tmp_path) -> tuple[Path, Path]:
    _, base = family_models["skyreels-v3-a2v"]
    first = _write(
        tmp_path / "first.safetensors", _lora_tensors(A2V_LINEARS, _pairs(base, A2V_LINEARS, 6), "original")
    )
    second = _write(
        tmp_path / "second.safetensors",
        _lora_tensors(A2V_LINEARS[1:4], _pairs(base, A2V_LINEARS[1:4], 7), "kohya"),
    )
    return first, second


def _states_equal(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[name], right[name]) for name in left)


def test_unloading_restores_the_weights_bit_for_bit_and_refusing_equals_a_fresh_load(
    family_models, two_adapters
):
    sources, _ = family_models["skyreels-v3-a2v"]
    first, second = two_adapters
    fresh = load_transformer(sources, dtype=torch.bfloat16).state_dict()
    model = load_transformer(sources, dtype=torch.bfloat16, adapters=[(first, 1.0)])
    assert not _states_equal(model.state_dict(), fresh)

    set_adapters(model, [(second, 0.7)])
    assert _states_equal(
        model.state_dict(),
        load_transformer(sources, dtype=torch.bfloat16, adapters=[(second, 0.7)]).state_dict(),
    )

    set_adapters(model, ())
    assert _states_equal(model.state_dict(), fresh)
    assert model.fused_adapters.adapters == () and not model.fused_adapters.parameters


def test_unfusing_by_subtraction_is_not_exact_in_bf16(family_models, two_adapters):
    """Why set_adapters re-reads the checkpoint instead of subtracting the delta again."""
    sources, base = family_models["skyreels-v3-a2v"]
    first, _ = two_adapters
    name = "blocks.0.attn1.to_q.weight"
    fused = load_transformer(sources, dtype=torch.bfloat16, adapters=[(first, 1.0)]).state_dict()[name]
    delta = fused.float() - base[name].to(torch.bfloat16).float()  # the delta as fused, in fp32
    subtracted = (fused.float() - delta.to(torch.bfloat16).float()).to(torch.bfloat16)
    assert not torch.equal(subtracted, base[name].to(torch.bfloat16))


def test_fp8_fuses_then_quantises_and_refuses_exactly_under_offloading(family_models, two_adapters):
    sources, base = family_models["skyreels-v3-a2v"]
    first, second = two_adapters

    def load(adapters):
        return load_accelerated_transformer(
            sources, device=torch.device("cpu"), dtype=torch.float32, attention="native",
            acceleration=Acceleration(fp8=True, offload=True), num_steps=4, adapters=adapters,
        )  # fmt: skip

    model = load([(first, 1.0)])
    name = "blocks.0.attn1.to_q.weight"
    stored = dict(model.named_parameters())[name]
    assert stored.dtype == FP8_STORAGE
    delta = (
        load_transformer(sources, dtype=torch.float32, adapters=[(first, 1.0)]).state_dict()[name]
        - base[name]
    )
    assert torch.equal(stored.data, (base[name] + delta).to(FP8_STORAGE))

    set_adapters(model, [(second, 0.5)])
    assert _states_equal(model.state_dict(), load([(second, 0.5)]).state_dict())
    inputs = make_inputs(batch=1)
    with torch.no_grad():
        assert torch.isfinite(model(**inputs, return_dict=False)[0]).all()


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        (
            {"diffusion_model.blocks.0.self_attn.qq.lora_down.weight": torch.zeros(3, 64)},
            "maps to no parameter",
        ),
        ({"diffusion_model.blocks.9.self_attn.q.diff": torch.zeros(64)}, "maps to no parameter"),
        ({"diffusion_model.blocks.0.self_attn.q.weight": torch.zeros(64, 64)}, "is not a LoRA key"),
        (
            {
                "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(3, 65),
                "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.zeros(64, 3),
            },
            "do not fit 'blocks.0.attn1.to_q.weight' of shape (64, 64)",
        ),
        (
            {
                "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(4, 64),
                "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.zeros(64, 3),
            },
            "rank mismatch",
        ),
        (
            {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(3, 64)},
            "no matching up half",
        ),
        ({"diffusion_model.blocks.0.norm3.diff": torch.zeros(63)}, "has shape (63,), expected (64,)"),
    ],
)
def test_bad_adapters_are_refused_naming_key_and_file(tensors, message, family_models, tmp_path):
    sources, _ = family_models["skyreels-v3-a2v"]
    lora = _write(tmp_path / "bad.safetensors", tensors)
    with pytest.raises(WeightsError, match="bad.safetensors") as refused:
        load_transformer(sources, dtype=torch.float32, adapters=[(lora, 1.0)])
    assert message in str(refused.value)
    assert next(iter(tensors)) in str(refused.value) or "rank mismatch" in message or "no matching" in message


@pytest.mark.parametrize("content", ["pickle", "corrupt"])
def test_pickles_and_corrupt_files_are_refused_without_unpickling(content, family_models, tmp_path):
    sources, _ = family_models["skyreels-v3-a2v"]
    lora = tmp_path / "adapter.safetensors"
    if content == "pickle":
        torch.save({"diffusion_model.blocks.0.self_attn.q.diff_b": torch.zeros(64)}, lora)
    else:
        lora.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json" + bytes(64))
    with pytest.raises(WeightsError, match="adapter.safetensors") as refused:
        load_transformer(sources, dtype=torch.float32, adapters=[(lora, 1.0)])
    said = str(refused.value)
    assert ("is a pickle (torch.save) file, which is never loaded" in said) == (content == "pickle")
    assert ("not a readable safetensors file" in said) == (content == "corrupt")
    assert "\n" not in said


def test_refusing_also_writes_the_pinned_host_copies_of_stream_offloading(family_models, two_adapters):
    """With CUDA streams, diffusers' group offloading moves a separate pinned host copy of each
    parameter to the GPU (ModuleGroup.cpu_param_dict). CPUs have no streams, so the copies are
    planted here as that layout holds them, and must receive the re-fused weights."""
    sources, _ = family_models["skyreels-v3-a2v"]
    first, second = two_adapters
    model = load_accelerated_transformer(
        sources, device=torch.device("cpu"), dtype=torch.float32, attention="native",
        acceleration=Acceleration(offload=True), num_steps=4, adapters=[(first, 1.0)],
    )  # fmt: skip
    hook = model.blocks[0]._diffusers_hook.get_hook("group_offloading")
    hook.group.cpu_param_dict = {param: param.data.clone() for param in model.blocks[0].parameters()}

    set_adapters(model, [(second, 0.5)])

    expected = load_transformer(sources, dtype=torch.float32, adapters=[(second, 0.5)]).state_dict()
    for name, param in model.blocks[0].named_parameters():
        assert torch.equal(hook.group.cpu_param_dict[param], expected[f"blocks.0.{name}"]), name
