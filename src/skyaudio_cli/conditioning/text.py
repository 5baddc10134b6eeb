"""umT5-XXL prompt embeddings, with the original Wan2.1 cleaning, padding and zeroed padding rows.

Wan (wan/modules/t5.py) and diffusers' Wan pipelines both tokenise to 512 tokens with a mask, run the
encoder, keep each prompt's first `seq_len` rows and replace the rest with zeros: the DiT attends to
all 512 rows, so padding rows must be exact zeros, not the encoder's outputs for pad tokens.
"""

import html
import io
import random
import re
import unicodedata
from pathlib import Path

import sentencepiece
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase, T5Tokenizer, UMT5Config, UMT5EncoderModel

from skyaudio_cli.conditioning.checkpoint_files import (
    first_line,
    load_pretrained_folder,
    load_pth_state_dict,
    read_config_json,
)
from skyaudio_cli.conditioning.original_keys import load_original_umt5
from skyaudio_cli.errors import WeightsError

TEXT_LENGTH = 512
_TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _standard_width_map() -> dict[int, str]:
    """Fullwidth/halfwidth forms -> standard width (what ftfy's fix_character_width does)."""
    width_map = {0x3000: " "}
    for code in range(0xFF01, 0xFFF0):
        standard = unicodedata.normalize("NFKC", chr(code))
        if standard != chr(code):
            width_map[code] = standard
    return width_map


_STANDARD_WIDTH = _standard_width_map()
_CURLY_SINGLE_QUOTES = re.compile("[\u02bc\u2018-\u201b]")
_CURLY_DOUBLE_QUOTES = re.compile("[\u201c-\u201f]")


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning: ftfy.fix_text, double HTML unescape, whitespace collapse.

    ftfy is not a dependency, so its default fixes that change well-formed text are applied directly
    (NFC, fullwidth -> ASCII such as Chinese '，' -> ',', curly -> straight quotes); its mojibake
    repair is not, as prompts typed by users are not mis-decoded byte soup.
    """
    text = unicodedata.normalize("NFC", text.translate(_STANDARD_WIDTH))
    text = _CURLY_DOUBLE_QUOTES.sub('"', _CURLY_SINGLE_QUOTES.sub("'", text))
    text = html.unescape(html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()


def load_tokenizer(tokenizer_dir: Path) -> PreTrainedTokenizerBase:
    if not (tokenizer_dir / "tokenizer.json").is_file() and not (tokenizer_dir / "spiece.model").is_file():
        raise WeightsError(f"{tokenizer_dir / 'tokenizer.json'}: missing tokenizer file")
    # Parsed here first, so a damaged file is named; transformers reports it as a bare KeyError.
    for name in _TOKENIZER_JSON:
        if (tokenizer_dir / name).is_file():
            read_config_json(tokenizer_dir / name)
    try:
        return AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except Exception as error:  # noqa: BLE001 - the Rust tokenizers library raises plain Exception
        where = (
            tokenizer_dir / "tokenizer.json"
            if (tokenizer_dir / "tokenizer.json").is_file()
            else tokenizer_dir
        )
        raise WeightsError(f"{where}: unreadable tokenizer ({first_line(error)})") from error


def load_umt5_encoder(text_encoder: Path, dtype: torch.dtype) -> UMT5EncoderModel:
    """A transformers folder (Diffusers layout) or Wan's original `.pth`."""
    if text_encoder.suffix == ".pth":
        return load_original_umt5(load_pth_state_dict(text_encoder), text_encoder, dtype)
    return load_pretrained_folder(
        text_encoder, "model.safetensors",
        meta_model=lambda: UMT5EncoderModel(UMT5Config.from_pretrained(str(text_encoder))),
        load=lambda: UMT5EncoderModel.from_pretrained(str(text_encoder), dtype=dtype),
    )  # fmt: skip


class TextEncoder:
    def __init__(self, model: UMT5EncoderModel, tokenizer: PreTrainedTokenizerBase):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(
        cls, text_encoder: Path, tokenizer: Path, *, device="cpu", dtype=torch.float32
    ) -> "TextEncoder":
        text_encoder, tokenizer = Path(text_encoder), Path(tokenizer)
        loaded_tokenizer = load_tokenizer(tokenizer)
        return cls(load_umt5_encoder(text_encoder, dtype).to(device), loaded_tokenizer)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.inference_mode()
    def encode(
        self, prompts: list[str], *, max_length: int = TEXT_LENGTH, pad_to_max: bool = True
    ) -> torch.Tensor:
        """-> [B, max_length, d_model]; rows past each prompt's tokens (incl. its </s>) are zero.

        With pad_to_max=False the result is cut to the longest prompt (families that do not pad);
        the encoder still runs on max_length tokens so the kept rows are identical either way.
        """
        tokens = self.tokenizer(
            [clean_prompt(prompt) for prompt in prompts],
            padding="max_length",
            max_length=max_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.to(self.device)
        hidden = self.model(input_ids=tokens.input_ids.to(self.device), attention_mask=mask).last_hidden_state
        hidden = hidden.masked_fill(~mask.bool()[..., None], 0.0)
        if not pad_to_max:
            hidden = hidden[:, : int(mask.sum(dim=1).max())]
        return hidden


def _tiny_corpus(seed: int) -> list[str]:
    """A few hundred made-up words, so the tiny tokenizer has real merges and an <unk> path."""
    rng = random.Random(seed)
    syllables = [consonant + vowel for consonant in "klmnst" for vowel in "aeiou"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(400)]
    return [" ".join(rng.choices(words, k=10)) for _ in range(400)]


def make_tiny_tokenizer(
    tokenizer_dir: Path, *, vocab_size: int = 200, seed: int = 0
) -> PreTrainedTokenizerBase:
    """A real SentencePiece unigram tokenizer in umT5's id layout (<pad>=0, </s>=1, <unk>=2)."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_tiny_corpus(seed)),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    # Passing pieces+scores builds the fast tokenizer without the protobuf-based .model conversion.
    pieces = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    tokenizer.save_pretrained(str(tokenizer_dir))
    return tokenizer


def make_tiny_text_encoder(
    text_encoder_dir: Path, tokenizer_dir: Path, *, d_model: int = 32, num_layers: int = 2, seed: int = 0
) -> None:
    """Random umT5 encoder + tokenizer in the Diffusers folder layout (text_encoder/, tokenizer/)."""
    tokenizer = make_tiny_tokenizer(Path(tokenizer_dir), seed=seed)
    num_heads = 4
    config = UMT5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=2 * d_model,
        num_layers=num_layers,
        num_heads=num_heads,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    torch.manual_seed(seed)
    UMT5EncoderModel(config).save_pretrained(str(text_encoder_dir))
