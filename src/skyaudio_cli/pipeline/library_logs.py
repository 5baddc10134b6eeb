"""transformers' and diffusers' chatter while models load: info notices and per-file bars.

Loading a pipeline printed "Attention backends are an experimental feature ..." and one "Loading
weights 0/39" bar per component, which the user did not ask for: the CLI shows its own progress,
and an API user gets the loaded pipeline. Real warnings (level ERROR and above) still show.
"""

from collections.abc import Iterator
from contextlib import contextmanager


def _libraries() -> tuple:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    return transformers_logging, diffusers_logging


def silence_libraries() -> None:
    """From now on, only errors from transformers and diffusers, and none of their progress bars."""
    for library in _libraries():
        library.set_verbosity_error()
        library.disable_progress_bar()


@contextmanager
def libraries_quiet() -> Iterator[None]:
    """`silence_libraries` for the block, then the settings as they were (an API user's own)."""
    saved = [
        (library, library.get_verbosity(), library.is_progress_bar_enabled()) for library in _libraries()
    ]
    silence_libraries()
    try:
        yield
    finally:
        for library, verbosity, bars in saved:
            library.set_verbosity(verbosity)
            if bars:
                library.enable_progress_bar()
