"""The package's import direction: cli -> callbacks, tracking -> models, data, plots, report -> explain
(docs/design.md, "What each package may import").

Checked on the source's import statements, so a forbidden import fails here even when no test
happens to execute the module that holds it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "heatlens"
TRACKING_LIBRARIES = ("mlflow", "lightning.pytorch.loggers.mlflow")

# subpackage -> modules it must never import (prefix match on dotted names)
FORBIDDEN = {
    "explain": ("lightning", "pytorch_lightning", "mlflow", "hydra", "omegaconf",
                "heatlens.data", "heatlens.models", "heatlens.callbacks", "heatlens.tracking",
                "heatlens.plots", "heatlens.cli", "heatlens.report"),
    "data": ("mlflow", "heatlens.models", "heatlens.callbacks", "heatlens.tracking", "heatlens.cli",
             "heatlens.report"),
    "clinical": ("lightning", "pytorch_lightning", "mlflow", "hydra", "omegaconf", "heatlens.data", "heatlens.models",
                 "heatlens.callbacks", "heatlens.tracking", "heatlens.plots", "heatlens.cli", "heatlens.report"),
    "models": ("mlflow", "heatlens.callbacks", "heatlens.tracking", "heatlens.cli", "heatlens.report"),
    "plots": ("mlflow", "lightning", "heatlens.callbacks", "heatlens.tracking", "heatlens.cli"),
    "report": ("mlflow", "heatlens.callbacks", "heatlens.cli"),
    "tracking": ("heatlens.callbacks", "heatlens.cli"),
    "callbacks": ("heatlens.cli",),
    "sweep": ("heatlens.data", "heatlens.models", "heatlens.callbacks", "heatlens.tracking", "heatlens.cli",
              "heatlens.report", "heatlens.plots", "heatlens.explain"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def source_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def violates(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_imports_flow_one_way(path: Path) -> None:
    relative = path.relative_to(PACKAGE_DIR)
    subpackage = relative.parts[0] if len(relative.parts) > 1 else None
    names = imported_modules(path)
    bad = {n for n in names if violates(n, FORBIDDEN.get(subpackage, ()))}
    if subpackage != "tracking":
        bad |= {n for n in names if violates(n, TRACKING_LIBRARIES)}
    assert not bad, f"{relative} imports {sorted(bad)}: see the layering rules in docs/design.md"


def test_layering_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import mlflow\nfrom lightning.pytorch import Trainer\n")
    names = imported_modules(module)
    assert violates("mlflow", FORBIDDEN["explain"]) and "mlflow" in names
    assert any(violates(n, FORBIDDEN["explain"]) for n in names if n.startswith("lightning"))
