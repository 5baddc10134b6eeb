"""skyaudio: talking-portrait video from speech (SkyReels-Audio method on diffusers)."""

import logging

__version__ = "0.1.0"

# Where bitsandbytes is installed (the `train` extra), diffusers, transformers and peft import it,
# and its CPU backend then warns that an optional 4-bit matmul kernel is missing: a notice about
# nothing skyaudio uses, printed to every CLI and API user. Only that message is dropped.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: not record.getMessage().startswith("Failed to load CPU gemm_4bit_forward")
)
