"""Manifest lines -> job dataclasses, generically from each task's job fields.

A line holds the same fields as the task's subcommand: `{"task": "generate", "portrait": "a.png",
"audio": "a.wav", "output": "o.mp4", "seed": 3}`. Fields of nested dataclasses (the job's
`settings`) may be given flat, as above, or under their own key (`"settings": {"seed": 3}`).
Values are type-checked against the dataclass annotations (JSON `3.7` is not a seed) and then
through the subcommand's own option declaration, so ranges and choices match the command line.
"""

import dataclasses
import functools
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

try:  # typer >= 0.24 ships its own copy of click and raises that copy's exceptions
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses the click package
    from click import exceptions as click_exceptions

from skyaudio_cli.batch.tasks import DECLARED_TASKS, task_spec
from skyaudio_cli.errors import InputError


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
    spec = task_spec(task)
    checks = _option_checks(spec.command)
    job = _build(spec.job_type, values, checks, {k: v for k, v in (defaults or {}).items() if k in checks})
    return BatchJob(line.number, line.index, task, job)


def _build(
    job_type: type, values: dict, checks: dict[str, Callable[[Any], Any]], defaults: Mapping[str, Any]
) -> Any:
    hints = typing.get_type_hints(job_type)
    nested = {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
    flat = {**defaults, **_flatten(values, nested)}
    owner = {key: job_type for key in hints if key not in nested}
    for nested_type in nested.values():
        owner.update(dict.fromkeys(typing.get_type_hints(nested_type), nested_type))
    arguments: dict[type, dict[str, Any]] = {job_type: {}, **{t: {} for t in nested.values()}}
    for key, value in flat.items():
        if key not in owner:
            raise InputError(f'unknown key "{key}" (task fields: {", ".join(sorted(owner))})')
        hint = typing.get_type_hints(owner[key])[key]
        arguments[owner[key]][key] = _convert(key, value, hint, checks.get(key))
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


def _convert(key: str, value: Any, hint: Any, check: Callable[[Any], Any] | None) -> Any:
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
    if check is not None:
        value = check(value)
    if isinstance(value, Enum):
        value = value.value
    return float(value) if base is float else value


@functools.cache
def _option_checks(command: Callable[..., None]) -> dict[str, Callable[[Any], Any]]:
    """field name -> converter applying the subcommand's declared range/choice for `--field-name`."""
    app = typer.Typer()
    app.command()(command)
    click_command = typer.main.get_command(app)
    context = click_command.make_context("batch", [], resilient_parsing=True)
    checks = {}
    for param in click_command.params:
        long_names = [name for name in param.opts if name.startswith("--")]
        if long_names:
            key = long_names[0][2:].replace("-", "_")
            checks[key] = functools.partial(_check, key, param, context)
    return checks


def _check(key: str, param, context, value: Any) -> Any:
    try:
        return param.process_value(context, value)
    except click_exceptions.UsageError as bad:
        raise InputError(f'"{key}": {bad.message}') from None


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list"}
    return "null" if value is None else names.get(type(value), "an object")
