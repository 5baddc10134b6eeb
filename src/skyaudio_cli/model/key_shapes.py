"""Every key of the released DiT checkpoints with its shape, from the model's dimensions.

Pure Python (no torch): the tiny checkpoints are written from these shapes (model/tiny.py), and the
memory and FLOP counts of the full-size models are read from them (model/cost.py, `skyaudio
doctor`) without importing torch.
"""

import math

PATCH = (1, 2, 2)


def _linear(key: str, out_features: int, in_features: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (out_features, in_features), f"{key}.bias": (out_features,)}


def _layer_norm(key: str, dim: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.weight": (dim,), f"{key}.bias": (dim,)}


def backbone_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    image_dim: int | None,
    in_channels: int,
    out_channels: int = 16,
) -> dict[str, tuple[int, ...]]:
    """The Wan2.1 keys with their shapes: I2V with CLIP tokens, or T2V when image_dim is None."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (dim, in_channels, *PATCH),
        "patch_embedding.bias": (dim,),
        **_linear("text_embedding.0", dim, text_dim),
        **_linear("text_embedding.2", dim, dim),
        **_linear("time_embedding.0", dim, freq_dim),
        **_linear("time_embedding.2", dim, dim),
        **_linear("time_projection.1", 6 * dim, dim),
        **_linear("head.head", out_channels * math.prod(PATCH), dim),
        "head.modulation": (1, 2, dim),
    }
    if image_dim is not None:
        shapes.update(_layer_norm("img_emb.proj.0", image_dim))
        shapes.update(_linear("img_emb.proj.1", image_dim, image_dim))
        shapes.update(_linear("img_emb.proj.3", dim, image_dim))
        shapes.update(_layer_norm("img_emb.proj.4", dim))
    cross_projections = ["q", "k", "v", "o"] + (["k_img", "v_img"] if image_dim is not None else [])
    for n in range(layers):
        block = f"blocks.{n}"
        for attention, projections in (("self_attn", "qkvo"), ("cross_attn", cross_projections)):
            for projection in projections:
                shapes.update(_linear(f"{block}.{attention}.{projection}", dim, dim))
            shapes[f"{block}.{attention}.norm_q.weight"] = (dim,)
            shapes[f"{block}.{attention}.norm_k.weight"] = (dim,)
        if image_dim is not None:
            shapes[f"{block}.cross_attn.norm_k_img.weight"] = (dim,)
        shapes.update(_layer_norm(f"{block}.norm3", dim))
        shapes.update(_linear(f"{block}.ffn.0", ffn, dim))
        shapes.update(_linear(f"{block}.ffn.2", dim, ffn))
        shapes[f"{block}.modulation"] = (1, 6, dim)
    return shapes


def original_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    image_dim: int,
    in_channels: int,
    out_channels: int = 16,
    audio_window: int = 5,
    vae_scale: int = 4,
    audio_feature_dim: int,
    audio_hidden: int,
    audio_tokens: int,
    audio_token_dim: int,
) -> dict[str, tuple[int, ...]]:
    """Every key of the released a2v / InfiniteTalk DiT with its shape (Linear weights are [out, in])."""
    shapes = backbone_key_shapes(
        dim=dim, layers=layers, ffn=ffn, freq_dim=freq_dim, text_dim=text_dim, image_dim=image_dim,
        in_channels=in_channels, out_channels=out_channels,
    )  # fmt: skip
    shapes.update(_linear("audio_proj.proj1", audio_hidden, audio_window * audio_feature_dim))
    shapes.update(
        _linear("audio_proj.proj1_vf", audio_hidden, (audio_window + vae_scale - 1) * audio_feature_dim)
    )
    shapes.update(_linear("audio_proj.proj2", audio_hidden, audio_hidden))
    shapes.update(_linear("audio_proj.proj3", audio_tokens * audio_token_dim, audio_hidden))
    shapes.update(_layer_norm("audio_proj.norm", audio_token_dim))
    for n in range(layers):
        block = f"blocks.{n}"
        shapes.update(_linear(f"{block}.audio_cross_attn.q_linear", dim, dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.kv_linear", 2 * dim, audio_token_dim))
        shapes.update(_linear(f"{block}.audio_cross_attn.proj", dim, dim))
        shapes.update(_layer_norm(f"{block}.norm_x", dim))
    return _model_level_keys_first(shapes)


def humo_key_shapes(
    *,
    dim: int,
    layers: int,
    ffn: int,
    freq_dim: int,
    text_dim: int,
    in_channels: int,
    audio_window: int = 8,
    audio_feature_dim: int,
    audio_hidden: int,
    audio_tokens: int,
    audio_token_dim: int,
) -> dict[str, tuple[int, ...]]:
    """Every key of a released HuMo DiT (Wan2.1 T2V + HuMo's audio modules) with its shape."""
    shapes = backbone_key_shapes(
        dim=dim, layers=layers, ffn=ffn, freq_dim=freq_dim, text_dim=text_dim, image_dim=None,
        in_channels=in_channels,
    )  # fmt: skip
    projection = "audio_proj.audio_proj_glob_{}.layer"
    shapes.update(_linear(projection.format(1), audio_hidden, audio_window * audio_feature_dim))
    shapes.update(_linear(projection.format(2), audio_hidden, audio_hidden))
    shapes.update(_linear(projection.format(3), audio_tokens * audio_token_dim, audio_hidden))
    shapes.update(_layer_norm(projection.format("norm"), audio_token_dim))
    for n in range(layers):
        wrapper = f"blocks.{n}.audio_cross_attn_wrapper"
        shapes.update(_layer_norm(f"{wrapper}.norm1_audio", dim))
        inputs = {"q": dim, "k": audio_token_dim, "v": audio_token_dim, "o": dim}
        for projection_name, in_features in inputs.items():
            shapes.update(_linear(f"{wrapper}.audio_cross_attn.{projection_name}", dim, in_features))
        shapes[f"{wrapper}.audio_cross_attn.norm_q.weight"] = (dim,)
        shapes[f"{wrapper}.audio_cross_attn.norm_k.weight"] = (dim,)
    return _model_level_keys_first(shapes)


def _model_level_keys_first(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    # As the releases order them: embeddings, head and audio projection, then block by block.
    return {key: shapes[key] for key in sorted(shapes, key=lambda key: key.startswith("blocks."))}
