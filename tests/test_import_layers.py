"""Imports only go down the layers (docs/architecture.md). A lower layer importing a higher one fails
here."""

import ast
from pathlib import Path

import skyaudio_cli

ROOT = Path(skyaudio_cli.__file__).parent
# Highest first. A unit may import units of its own or any lower layer.
LAYERS = (
    {"__main__", "demo", "cli", "batch"},
    {"tasks", "tiny", "training"},
    {"pipeline"},
    {"edit"},
    {"long_video"},
    {"face", "conditioning", "model", "sampling", "weights"},
    {"media"},
    {"console", "errors", "modes", "__init__"},
)


def layer_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def imported_units(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "skyaudio_cli":
            names = (
                [node.module]
                if node.module != "skyaudio_cli"
                else [f"skyaudio_cli.{a.name}" for a in node.names]
            )
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "skyaudio_cli"]
        units.update(name.split(".")[1] for name in names if "." in name)
    return units


def test_every_unit_is_in_a_layer():
    units = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert units - {"__version__"} <= set().union(*LAYERS)


def test_imports_only_go_down():
    upward = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        unit = relative.split("/")[0].removesuffix(".py")
        for target in imported_units(path) - {unit, "__version__"}:
            if layer_of(target) < layer_of(unit):
                upward.append(f"{relative} imports skyaudio_cli.{target}")
    assert upward == []
