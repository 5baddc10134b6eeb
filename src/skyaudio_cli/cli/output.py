"""Where the CLI writes: logs and progress go to stderr, results to stdout.

Batch scripts parse stdout, so with `--json` exactly one JSON object is printed there, for
success and failure alike; everything human-oriented goes to stderr.
"""

import json
import sys
from typing import Any

from rich.console import Console

stderr = Console(stderr=True, highlight=False)


def info(message: str) -> None:
    stderr.print(message)


def warn(message: str) -> None:
    stderr.print(f"[bold yellow]warning:[/] {message}")


def error_line(message: str) -> None:
    # Errors print without rich markup so paths with brackets survive intact.
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def emit_json(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
