"""What a training config can ask for from packages skyaudio does not require: TensorBoard logs
(`tensorboard = true`) and bitsandbytes' 8-bit AdamW (`optimizer = "adamw8bit"`).

Both are checked before any model loads, so a missing package (or one whose kernels cannot run on
the training device) is one line naming the key and how to install it, not a failure after minutes
of loading.
"""

import torch

from skyaudio_cli.errors import InputError
from skyaudio_cli.training.config import TrainConfig

# The tracker's project name: accelerate writes the event files to output/<project name>/.
TENSORBOARD_DIR = "tensorboard"


def check(config: TrainConfig) -> None:
    """One-line InputError if the config asks for a package that is missing or cannot run here."""
    if config.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401  (the writer accelerate's tracker uses)
        except ImportError as error:
            raise InputError(
                f"{config.source}: 'tensorboard = true' needs the tensorboard package "
                f"(pip install tensorboard, or pip install 'skyaudio[train]'): {error}"
            ) from error
    if config.optimizer == "adamw8bit":
        _probe_adamw8bit(config)


def _probe_adamw8bit(config: TrainConfig) -> None:
    """One 8-bit AdamW step on the device the Trainer's Accelerator picks (CUDA if any, else the
    CPU): bitsandbytes imports on machines where its kernels for that device do not load."""
    install = "pip install bitsandbytes, or pip install 'skyaudio[train]'"
    try:
        import bitsandbytes
    except ImportError as error:
        raise InputError(
            f"{config.source}: 'optimizer = \"adamw8bit\"' needs the bitsandbytes package ({install})"
        ) from error
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        # 4096 elements: bitsandbytes keeps 32-bit state below that size (min_8bit_size).
        parameter = torch.nn.Parameter(torch.zeros(4096, device=device))
        parameter.grad = torch.ones_like(parameter)
        bitsandbytes.optim.AdamW8bit([parameter], lr=1e-3).step()
    except Exception as error:  # bitsandbytes raises RuntimeError, NotImplementedError, its own errors
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(
            f"{config.source}: 'optimizer = \"adamw8bit\"': bitsandbytes {bitsandbytes.__version__} "
            f'cannot run on {device.type} ({reason}); use optimizer = "adamw" or reinstall ({install})'
        ) from error


def make_optimizer(name: str, parameters: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """AdamW without weight decay: torch's (fp32 moments), or bitsandbytes' 8-bit blockwise moments."""
    if name == "adamw8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(parameters, lr=lr, weight_decay=0.0)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)


def tensorboard_scalars(record: dict) -> dict[str, float]:
    """A loss-log record as TensorBoard scalars: the loss under its stage's name, lr, mask weights."""
    return {
        f"loss/{record['stage']}": record["loss"],
        "lr": record["lr"],
        "mask/face": record["w_face"],
        "mask/lip": record["w_lip"],
    }
