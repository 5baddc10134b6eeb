"""Manifest lines -> job dataclasses, generically from each task's job fields.

A line holds the same fields as the task's subcommand: `{"task": "generate", "portrait": "a.png",
"audio": "a.wav", "output": "o.mp4", "seed": 3}`. Fields of nested dataclasses (the job's
`settings`) may be given flat, as above, or under their own key (`"settings": {"seed": 3}`).
Values are type-checked against the dataclass annotations (JSON `3.7` is not a seed) and then
against the range or choices the field declares (tasks/fields.py), the same declarations the
subcommand's options are made from, so a manifest accepts exactly what the command line does.
"""

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyaudio_cli.errors import InputError
from skyaudio_cli.tasks.fields import problem_with
from skyaudio_cli.tasks.registry import DECLARED_TASKS, task_spec


@dataclass(frozen=True)
class ManifestLine:
    number: int  # 1-based line number in the file, for messages
    index: int  # 0-based position among the job lines (blank lines skipped): what --shard divides
    text: str


@dataclass(frozen=True)
class BatchJob:
    line: int
    index: int
    task: str
    job: Any  # the task's job dataclass
    # The job resolved against its model's family (tasks.resolve.ResolvedJob): set by plan_batch,
    # which checks every job before any model loads; the runner runs exactly that.
    resolved: Any = None


def read_manifest(source: str) -> list[ManifestLine]:
    """The job lines of a JSONL file, or of stdin for `-`."""
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"manifest {source}: file not found") from None
        except (OSError, UnicodeDecodeError) as failure:
            raise InputError(f"manifest {source}: cannot read it ({failure})") from None
    numbered = [(number, text) for number, text in enumerate(text.splitlines(), 1) if text.strip()]
    return [ManifestLine(number, index, text) for index, (number, text) in enumerate(numbered)]


def parse_line(line: ManifestLine, defaults: Mapping[str, Any] | None = None) -> BatchJob:
    """The line as its task's job; InputError (or NotAvailableError) says what is wrong with it.

    `defaults` (field -> value, from batch's own flags) fill the fields the line leaves out, for
    the tasks whose subcommand has that option (edit-lipsync has no --fps).
    """
    try:
        values = json.loads(line.text)
    except json.JSONDecodeError as bad:
        raise InputError(f"not valid JSON ({bad.msg} at column {bad.colno})") from None
    if not isinstance(values, dict):
        raise InputError(f"expected a JSON object, got {_json_type(values)}")
    task = values.pop("task", None)
    if not isinstance(task, str):
        raise InputError(f'missing "task" (one of: {", ".join(DECLARED_TASKS)})')
    job_type = task_spec(task).job_type
    unused = set(job_type.UNUSED_SETTINGS)
    job = _build(job_type, values, {k: v for k, v in (defaults or {}).items() if k not in unused}, unused)
    return BatchJob(line.number, line.index, task, job)


def _build(job_type: type, values: dict, defaults: Mapping[str, Any], unused: set[str]) -> Any:
    """`job_type` from the line's `values` over `defaults`; a key the task does not take is refused,
    as its subcommand has no such option (`unused` settings included)."""
    hints = _field_types(job_type)
    nested = {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
    flat = {**defaults, **_flatten(values, nested)}
    owner = {key: job_type for key in hints if key not in nested}
    for nested_type in nested.values():
        owner.update(dict.fromkeys(set(_field_types(nested_type)) - unused, nested_type))
    arguments: dict[type, dict[str, Any]] = {job_type: {}, **{t: {} for t in nested.values()}}
    for key, value in flat.items():
        if key not in owner:
            raise InputError(f'unknown key "{key}" (task fields: {", ".join(sorted(owner))})')
        arguments[owner[key]][key] = _convert(owner[key], key, value, _field_types(owner[key])[key])
    for field in dataclasses.fields(job_type):
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required and field.name not in arguments[job_type]:
            raise InputError(f'missing "{field.name}"')
    for name, nested_type in nested.items():
        arguments[job_type][name] = nested_type(**arguments[nested_type])
    return job_type(**arguments[job_type])


def _flatten(values: dict, nested: dict[str, type]) -> dict:
    flat = {key: value for key, value in values.items() if key not in nested}
    for name in nested:
        inner = values.get(name, {})
        if not isinstance(inner, dict):
            raise InputError(f'"{name}": expected a JSON object, got {_json_type(inner)}')
        for key, value in inner.items():
            if key in flat:
                raise InputError(f'"{key}" is given both flat and inside "{name}"')
            flat[key] = value
    return flat


_JSON_TYPES: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string", Path: "a path"}


def _field_types(owner: type) -> dict[str, Any]:
    """The dataclass fields of `owner` and their types (its ClassVars are no fields)."""
    hints = typing.get_type_hints(owner)
    return {f.name: hints[f.name] for f in dataclasses.fields(owner)}


def _convert(owner: type, key: str, value: Any, hint: Any) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise InputError(f'"{key}": must not be null')
    base = next(kind for kind in allowed if kind is not type(None))
    if typing.get_origin(base) is tuple:  # a repeatable option ("lora": ["a.safetensors:0.5", ...])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise InputError(f'"{key}": expected a list of strings, got {_json_type(value)}')
        return tuple(value)
    if base is Path:
        if not isinstance(value, str) or not value:
            raise InputError(f'"{key}": expected a path, got {_json_type(value)}')
        return Path(value)
    accepted = _JSON_TYPES.get(base)
    # JSON true is a Python int: it is no seed.
    if accepted and (not isinstance(value, accepted) or (isinstance(value, bool) and base is not bool)):
        raise InputError(f'"{key}": expected {_TYPE_NAMES[base]}, got {_json_type(value)}')
    problem = problem_with(owner, key, value)
    if problem is not None:
        raise InputError(f'"{key}": {problem}')
    return float(value) if base is float else value


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list"}
    return "null" if value is None else names.get(type(value), "an object")
