"""Independent float64 reference of the released audio-conditioned Wan2.1 DiT forward.

Written from the documented semantics of the original release (Wan2.1 ``wan/modules/model.py``,
InfiniteTalk ``wan/modules/multitalk_model.py`` / ``attention.py``, SkyReels-V3 ``transformer_a2v.py``)
and consuming the ORIGINAL state-dict keys directly, one sample at a time as the original does.
HuMo's variant (``humo/models/wan_modules/model_humo.py``, ``models/audio/audio_proj.py``: T2V cross-
attention, per-latent audio windows, q/k/v/o audio attention with RMS q/k norms) is chosen by its keys.
It shares no code with the package under test.
"""

import math

import torch
import torch.nn.functional as F

TEXT_LEN = 512
HUMO_PROJ = "audio_proj.audio_proj_glob_{}.layer"
BLOCK_EPS = 1e-6
DEFAULT_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm default: CLIP MLP and audio-token norms
PATCH = (1, 2, 2)


def _linear(sd: dict, key: str, x: torch.Tensor) -> torch.Tensor:
    return x @ sd[f"{key}.weight"].T + sd[f"{key}.bias"]


def _layer_norm(x: torch.Tensor, eps: float, weight=None, bias=None) -> torch.Tensor:
    centred = x - x.mean(-1, keepdim=True)
    out = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        out = out * weight + bias
    return out


def _rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + BLOCK_EPS) * weight


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Plain softmax attention over [Lq, dim] x [Lk, dim] with ``heads`` heads, no mask."""
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(0, 1) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return (weights @ v).transpose(0, 1).flatten(1)


def sinusoid(freq_dim: int, t: torch.Tensor) -> torch.Tensor:
    half = freq_dim // 2
    angles = torch.outer(t.double(), torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half))
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def rope_part_sizes(head_dim: int) -> tuple[int, int, int]:
    """Real-valued sizes of the (t, h, w) RoPE parts: h and w get 2*(d//6) each, t the remainder."""
    return head_dim - 4 * (head_dim // 6), 2 * (head_dim // 6), 2 * (head_dim // 6)


def rope_factors(head_dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Complex rotation per token and frequency, [f*h*w, head_dim/2], float64."""
    parts = []
    for axis, (size, positions) in enumerate(zip(rope_part_sizes(head_dim), grid, strict=True)):
        inverse = 1.0 / torch.pow(10000.0, torch.arange(0, size, 2, dtype=torch.float64) / size)
        angles = torch.outer(torch.arange(positions, dtype=torch.float64), inverse)
        shape = [1, 1, 1, angles.shape[1]]
        shape[axis] = positions
        parts.append(torch.polar(torch.ones_like(angles), angles).view(shape).expand(*grid, -1))
    return torch.cat(parts, dim=-1).reshape(math.prod(grid), -1)


def apply_rope(x: torch.Tensor, factors: torch.Tensor, heads: int) -> torch.Tensor:
    """Rotate consecutive channel pairs (as complex numbers) of each head."""
    pairs = x.unflatten(-1, (heads, -1, 2))
    rotated = torch.view_as_complex(pairs.contiguous()) * factors[:, None, :]
    return torch.view_as_real(rotated).flatten(1)


def group_audio(windows: torch.Tensor, vae_scale: int = 4) -> list[torch.Tensor]:
    """Per latent frame the flattened (window, layer, channel) audio input, gathered frame by frame."""
    centre = windows.shape[1] // 2
    groups = [windows[0].reshape(-1)]
    for k in range(1, (windows.shape[0] - 1) // vae_scale + 1):
        frames = range(vae_scale * (k - 1) + 1, vae_scale * k + 1)
        vectors = []
        for position, frame in enumerate(frames):
            if position == 0:
                vectors.extend(windows[frame, w] for w in range(centre + 1))
            elif position == vae_scale - 1:
                vectors.extend(windows[frame, w] for w in range(centre, windows.shape[1]))
            else:
                vectors.append(windows[frame, centre])
        groups.append(torch.stack(vectors).reshape(-1))
    return groups


def humo_audio_tokens(sd: dict, windows: torch.Tensor, token_dim: int) -> torch.Tensor:
    """windows [F_lat, 8, layers, channels] -> [F_lat, tokens, token_dim]."""
    hidden = torch.relu(_linear(sd, HUMO_PROJ.format(1), windows.flatten(1)))
    hidden = torch.relu(_linear(sd, HUMO_PROJ.format(2), hidden))
    tokens = _linear(sd, HUMO_PROJ.format(3), hidden).unflatten(-1, (-1, token_dim))
    norm = HUMO_PROJ.format("norm")
    return _layer_norm(tokens, DEFAULT_LAYER_NORM_EPS, sd[f"{norm}.weight"], sd[f"{norm}.bias"])


def audio_tokens(sd: dict, windows: torch.Tensor, token_dim: int) -> torch.Tensor:
    if f"{HUMO_PROJ.format(1)}.weight" in sd:
        return humo_audio_tokens(sd, windows, token_dim)
    groups = group_audio(windows)
    hidden = [torch.relu(_linear(sd, "audio_proj.proj1", groups[0]))]
    hidden += [torch.relu(_linear(sd, "audio_proj.proj1_vf", g)) for g in groups[1:]]
    hidden = torch.relu(_linear(sd, "audio_proj.proj2", torch.stack(hidden)))
    tokens = _linear(sd, "audio_proj.proj3", hidden).unflatten(-1, (-1, token_dim))
    return _layer_norm(
        tokens, DEFAULT_LAYER_NORM_EPS, sd["audio_proj.norm.weight"], sd["audio_proj.norm.bias"]
    )


def _block(sd, n, x, e0, factors, context_img, context_text, audio, heads, tokens_per_frame):
    b = f"blocks.{n}"
    shift, scale, gate, c_shift, c_scale, c_gate = (sd[f"{b}.modulation"][0] + e0).unbind(0)

    y = _layer_norm(x, BLOCK_EPS) * (1 + scale) + shift
    q = apply_rope(
        _rms_norm(_linear(sd, f"{b}.self_attn.q", y), sd[f"{b}.self_attn.norm_q.weight"]), factors, heads
    )
    k = apply_rope(
        _rms_norm(_linear(sd, f"{b}.self_attn.k", y), sd[f"{b}.self_attn.norm_k.weight"]), factors, heads
    )
    v = _linear(sd, f"{b}.self_attn.v", y)
    x = x + _linear(sd, f"{b}.self_attn.o", _attention(q, k, v, heads)) * gate

    # original norm3 is the affine cross-attention norm
    y = _layer_norm(x, BLOCK_EPS, sd[f"{b}.norm3.weight"], sd[f"{b}.norm3.bias"])
    q = _rms_norm(_linear(sd, f"{b}.cross_attn.q", y), sd[f"{b}.cross_attn.norm_q.weight"])
    k = _rms_norm(_linear(sd, f"{b}.cross_attn.k", context_text), sd[f"{b}.cross_attn.norm_k.weight"])
    v = _linear(sd, f"{b}.cross_attn.v", context_text)
    mixed = _attention(q, k, v, heads)
    if context_img is not None:
        k_img = _rms_norm(
            _linear(sd, f"{b}.cross_attn.k_img", context_img), sd[f"{b}.cross_attn.norm_k_img.weight"]
        )
        v_img = _linear(sd, f"{b}.cross_attn.v_img", context_img)
        mixed = mixed + _attention(q, k_img, v_img, heads)
    x = x + _linear(sd, f"{b}.cross_attn.o", mixed)

    humo = f"{b}.audio_cross_attn_wrapper"
    if f"{humo}.norm1_audio.weight" in sd:
        y = _layer_norm(x, BLOCK_EPS, sd[f"{humo}.norm1_audio.weight"], sd[f"{humo}.norm1_audio.bias"])
        a = f"{humo}.audio_cross_attn"
        outputs = []
        for f in range(audio.shape[0]):
            tokens = y[f * tokens_per_frame : (f + 1) * tokens_per_frame]
            q = _rms_norm(_linear(sd, f"{a}.q", tokens), sd[f"{a}.norm_q.weight"])
            k = _rms_norm(_linear(sd, f"{a}.k", audio[f]), sd[f"{a}.norm_k.weight"])
            outputs.append(_attention(q, k, _linear(sd, f"{a}.v", audio[f]), heads))
        x = x + _linear(sd, f"{a}.o", torch.cat(outputs))
    else:
        y = _layer_norm(x, BLOCK_EPS, sd[f"{b}.norm_x.weight"], sd[f"{b}.norm_x.bias"])
        dim = x.shape[-1]
        outputs = []
        for f in range(audio.shape[0]):
            tokens = y[f * tokens_per_frame : (f + 1) * tokens_per_frame]
            kv = _linear(sd, f"{b}.audio_cross_attn.kv_linear", audio[f])
            q = _linear(sd, f"{b}.audio_cross_attn.q_linear", tokens)
            outputs.append(_attention(q, kv[:, :dim], kv[:, dim:], heads))
        x = x + _linear(sd, f"{b}.audio_cross_attn.proj", torch.cat(outputs))

    y = _layer_norm(x, BLOCK_EPS) * (1 + c_scale) + c_shift
    ffn = _linear(sd, f"{b}.ffn.2", F.gelu(_linear(sd, f"{b}.ffn.0", y), approximate="tanh"))
    return x + ffn * c_gate


def reference_forward(
    state_dict: dict,
    *,
    heads: int,
    latents: torch.Tensor,
    timestep: float,
    text: torch.Tensor,
    clip: torch.Tensor | None,
    audio_windows: torch.Tensor,
    out_channels: int = 16,
) -> torch.Tensor:
    """One sample: latents [C, F, H, W], text [L<=512, text_dim] (padded here), clip [257, image_dim]
    (None for HuMo), audio_windows [T_video, 5, layers, channels] (HuMo: [F, 8, layers, channels]).
    Returns [out_channels, F, H, W] in float64."""
    sd = {k: v.double() for k, v in state_dict.items()}
    dim = sd["patch_embedding.bias"].shape[0]
    freq_dim = sd["time_embedding.0.weight"].shape[1]
    token_dim = sd.get("audio_proj.norm.weight", sd.get(f"{HUMO_PROJ.format('norm')}.weight")).shape[0]

    x = F.conv3d(
        latents.double()[None], sd["patch_embedding.weight"], sd["patch_embedding.bias"], stride=PATCH
    )
    grid = tuple(x.shape[2:])
    x = x.flatten(2)[0].T

    e = _linear(
        sd,
        "time_embedding.2",
        F.silu(_linear(sd, "time_embedding.0", sinusoid(freq_dim, torch.tensor([timestep])))),
    )
    e0 = _linear(sd, "time_projection.1", F.silu(e)).view(6, dim)

    padded = torch.cat([text.double(), text.new_zeros(TEXT_LEN - text.shape[0], text.shape[1]).double()])
    context_text = _linear(
        sd, "text_embedding.2", F.gelu(_linear(sd, "text_embedding.0", padded), approximate="tanh")
    )
    context_img = None
    if clip is not None:
        y = _layer_norm(
            clip.double(), DEFAULT_LAYER_NORM_EPS, sd["img_emb.proj.0.weight"], sd["img_emb.proj.0.bias"]
        )
        y = _linear(sd, "img_emb.proj.3", F.gelu(_linear(sd, "img_emb.proj.1", y)))
        context_img = _layer_norm(
            y, DEFAULT_LAYER_NORM_EPS, sd["img_emb.proj.4.weight"], sd["img_emb.proj.4.bias"]
        )

    audio = audio_tokens(sd, audio_windows.double(), token_dim)
    factors = rope_factors(dim // heads, grid)
    layers = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for n in range(layers):
        x = _block(sd, n, x, e0, factors, context_img, context_text, audio, heads, grid[1] * grid[2])

    shift, scale = (sd["head.modulation"][0] + e).unbind(0)
    x = _linear(sd, "head.head", _layer_norm(x, BLOCK_EPS) * (1 + scale) + shift)
    x = x.view(*grid, *PATCH, out_channels)
    x = torch.einsum("fhwpqrc->cfphqwr", x)
    return x.reshape(out_channels, *(g * p for g, p in zip(grid, PATCH, strict=True)))
