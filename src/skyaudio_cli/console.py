"""Where the tool writes: logs and progress go to stderr, results to stdout.

Batch scripts parse stdout, so with `--json` exactly one JSON object is printed there, for
success and failure alike; everything human-oriented goes to stderr.
"""

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

# No emoji codes: a file named "a:smile:b.mp4" must print as it is.
stderr = Console(stderr=True, highlight=False, emoji=False)
# In a log file (no terminal) a long warning stays one line instead of wrapping at 80 columns.
stderr.soft_wrap = not stderr.is_terminal


def info(message: str) -> None:
    """`message` is rich markup: wrap every user-supplied part (paths, prompts, ...) in `escape`."""
    stderr.print(message)


def warn(message: str) -> None:
    """`message` is plain text, printed as it is."""
    stderr.print(f"[bold yellow]warning:[/] {escape(message)}")


def error_line(message: str) -> None:
    # Errors print without rich markup so paths with brackets survive intact.
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def emit_json(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
