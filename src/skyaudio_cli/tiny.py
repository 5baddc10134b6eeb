"""`skyaudio weights make-tiny`: a complete, randomly initialised model folder for tests and smoke runs.

Every component is written in the same file layout and key names as the real release (original
Wan keys for the DiT, Diffusers/transformers folders for the rest), only with tiny dimensions, so
loading, conversion and every pipeline step run for real on a CPU in seconds. The dimensions
below must agree across components (text/image widths feed the DiT, the audio encoder's layers x
channels feed its audio projection).
"""

from pathlib import Path

from skyaudio_cli.errors import InputError

TINY_FAMILY = "tiny-random"
# HuMo layouts, each written as the tiny family of its architecture (which sets the DiT's input
# channels: the 17B's 36 in sharded safetensors, the 1.7B's 16 in ema.pth).
HUMO_FAMILIES = {"humo-17b": "tiny-humo", "humo-1.7b": "tiny-humo-1.7b"}
LAYOUTS = ("skyreels-v3-a2v", "infinitetalk", *HUMO_FAMILIES)

TEXT_DIM = 32
IMAGE_DIM = 32
AUDIO_LAYERS = 2
AUDIO_CHANNELS = 32
# Tiny Whisper: 4 encoder layers (HuMo averages 4 groups of them) of this width.
WHISPER_CHANNELS = 16
WHISPER_LAYERS = 4


def make_tiny(dest: Path, *, layout: str = "skyreels-v3-a2v", seed: int = 0) -> Path:
    """Write a tiny model folder at `dest` (created; must be empty or absent) and return it."""
    check_destination(dest, layout)
    from skyaudio_cli.conditioning.image_encoder import make_tiny_image_encoder
    from skyaudio_cli.conditioning.text import make_tiny_text_encoder
    from skyaudio_cli.conditioning.vae import make_tiny_vae
    from skyaudio_cli.conditioning.wav2vec2 import make_tiny_wav2vec2
    from skyaudio_cli.model.tiny import write_tiny_transformer
    from skyaudio_cli.weights import write_local_model

    dest.mkdir(parents=True, exist_ok=True)
    if layout in HUMO_FAMILIES:
        return _make_tiny_humo(dest, HUMO_FAMILIES[layout], seed)

    transformer_sources = write_tiny_transformer(
        dest / "transformer",
        text_dim=TEXT_DIM,
        image_dim=IMAGE_DIM,
        audio_layers=AUDIO_LAYERS,
        audio_channels=AUDIO_CHANNELS,
        adapter_split=layout == "infinitetalk",
        seed=seed,
    )
    make_tiny_vae(dest / "vae", seed=seed)
    make_tiny_text_encoder(dest / "text_encoder", dest / "tokenizer", d_model=TEXT_DIM, seed=seed)
    make_tiny_image_encoder(
        dest / "image_encoder", dest / "image_processor", hidden_size=IMAGE_DIM, seed=seed
    )
    make_tiny_wav2vec2(dest / "audio_encoder", hidden_size=AUDIO_CHANNELS, num_layers=AUDIO_LAYERS, seed=seed)

    components = {
        name: name for name in ("vae", "text_encoder", "tokenizer", "image_encoder", "image_processor")
    }
    components["audio_encoder"] = "audio_encoder"
    components["transformer"] = transformer_sources[0].relative_to(dest).as_posix()
    if len(transformer_sources) > 1:
        components["transformer_adapter"] = transformer_sources[1].relative_to(dest).as_posix()
    write_local_model(dest, family=TINY_FAMILY, audio_encoder="wav2vec2", components=components)
    return dest


def check_destination(dest: Path, layout: str) -> None:
    """InputError for an unknown layout or a destination that is not an empty or absent folder.

    Needs no model code (torch, transformers), so a mistake answers at once.
    """
    if layout not in LAYOUTS:
        raise InputError(f"--family {layout}: tiny models exist for {', '.join(LAYOUTS)}")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: is a file, not a folder")
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest}: folder is not empty")


def tiny_family(layout: str) -> str:
    """The family a tiny model of `layout` is written as (it picks the pipeline and its defaults)."""
    return HUMO_FAMILIES.get(layout, TINY_FAMILY)


def _make_tiny_humo(dest: Path, family: str, seed: int) -> Path:
    """HuMo layout: no CLIP image encoder, Whisper audio features (5 layer groups)."""
    from skyaudio_cli.conditioning.text import make_tiny_text_encoder
    from skyaudio_cli.conditioning.vae import make_tiny_vae
    from skyaudio_cli.conditioning.whisper_encoder import make_tiny_whisper
    from skyaudio_cli.model.tiny import write_tiny_humo_transformer
    from skyaudio_cli.pipeline.family import family_defaults
    from skyaudio_cli.weights import write_local_model

    transformer = write_tiny_humo_transformer(
        dest / "transformer",
        text_dim=TEXT_DIM,
        audio_channels=WHISPER_CHANNELS,
        in_channels=family_defaults(family).variant.transformer_in_channels,
        seed=seed,
    )
    make_tiny_vae(dest / "vae", seed=seed)
    make_tiny_text_encoder(dest / "text_encoder", dest / "tokenizer", d_model=TEXT_DIM, seed=seed)
    make_tiny_whisper(dest / "audio_encoder", d_model=WHISPER_CHANNELS, layers=WHISPER_LAYERS, seed=seed)
    components = {name: name for name in ("vae", "text_encoder", "tokenizer", "audio_encoder")}
    components["transformer"] = transformer.relative_to(dest).as_posix()
    write_local_model(dest, family=family, audio_encoder="whisper", components=components)
    return dest
