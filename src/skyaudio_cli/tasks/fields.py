"""Ranges and choices of job fields, declared once on the field: the CLI's options (cli/options.py)
and the batch manifest's checks (batch/manifest.py) are both made from them, so a value the command
line refuses is refused in a manifest with the same words."""

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_BOUNDS, _CHOICES = "bounds", "choices"


@dataclass(frozen=True)
class Bounds:
    """A closed range; None leaves a side open."""

    minimum: float | None = None
    maximum: float | None = None

    def problem(self, value: float, given: Any = None) -> str | None:
        """Why `value` (parsed from `given`, shown in the message) is not allowed, or None."""
        shown = repr(value if given is None else given)
        if math.isnan(value):
            return f"{shown} is not a number"
        if math.isinf(value):
            return f"{shown} is not a finite number"
        if self.minimum is not None and value < self.minimum:
            return f"{value:g} is below the minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{value:g} is above the maximum {self.maximum:g}"
        return None


def bounded(default: Any, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field whose values must lie in [minimum, maximum]."""
    return dataclasses.field(default=default, metadata={_BOUNDS: Bounds(minimum, maximum)})


def choice(default: Any, choices: type[StrEnum]) -> Any:
    """A dataclass field holding one of `choices`' values (stored as the plain string)."""
    return dataclasses.field(default=default, metadata={_CHOICES: choices})


def _metadata(owner: type, name: str) -> dict:
    return next(f.metadata for f in dataclasses.fields(owner) if f.name == name)


def bounds_of(owner: type, name: str) -> Bounds:
    return _metadata(owner, name)[_BOUNDS]


def problem_with(owner: type, name: str, value: Any) -> str | None:
    """Why `value` is not allowed in field `name` of the dataclass `owner` (by its declared range or
    choices), or None; fields without a declaration allow any value of their type."""
    metadata = _metadata(owner, name)
    if _BOUNDS in metadata:
        return metadata[_BOUNDS].problem(float(value), value)
    choices = metadata.get(_CHOICES)
    if choices is not None and value not in {c.value for c in choices}:
        allowed = ", ".join(repr(c.value) for c in choices)
        return f"{value!r} is not one of {allowed}."
    return None
