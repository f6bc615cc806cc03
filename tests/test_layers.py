"""The package's layers (src/huescale/__init__.py): a module imports from its own layer and the layers below it,
never above, inside functions included. Checked on the source, so a new upward import fails here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src" / "huescale"
PACKAGES = ("data", "models", "training", "evaluation", "inference", "pipeline")
CLI = ("cli", "cli_colorize", "cli_commands")
BELOW = {  # layer -> the layers it may import (its own included)
    "foundations": {"foundations"},
    "data": {"foundations", "data"},
    "models": {"foundations", "models"},
    "training": {"foundations", "data", "models", "training"},
    "evaluation": {"foundations", "data", "models", "training", "evaluation"},
    "inference": {"foundations", "data", "models", "training", "inference"},
    "pipeline": {"foundations", "data", "models", "training", "evaluation", "inference", "pipeline"},
    "cli": {"foundations", "data", "models", "training", "evaluation", "inference", "pipeline", "cli"},
}
# the documented exceptions (src/huescale/__init__.py and the packages' docstrings)
EXCEPTIONS = {
    ("huescale.validation", "models"),  # model names against the registry, inside the checking functions
    ("huescale.validation", "training"),  # loss names against the loss registry, likewise
}
INFERENCE_MAY = ("huescale.evaluation.tables",)  # the model card's metric table


def layer(dotted: str) -> str:
    """``huescale.training.trainer`` -> ``training``; top-level modules are foundations, the cli modules cli."""
    parts = dotted.split(".")
    if len(parts) < 2 or parts[1] in CLI:
        return "cli" if len(parts) > 1 else "foundations"
    return parts[1] if parts[1] in PACKAGES else "foundations"


def imports(path: Path, module: str) -> set[str]:
    """Every ``huescale...`` module ``path`` imports, anywhere in it (``from huescale.x import y`` gives both
    ``huescale.x`` and, where it is a module, ``huescale.x.y``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("huescale")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("huescale"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if (SRC.parent / (node.module + "." + a.name).replace(".", "/")).with_suffix(".py").is_file()
                      or (SRC.parent / (node.module + "." + a.name).replace(".", "/")).is_dir()}
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mine = layer(module)
        for target in imports(path, module):
            theirs = layer(target)
            if theirs == "foundations" and target == "huescale":
                continue
            if theirs in BELOW[mine] or (module, theirs) in EXCEPTIONS:
                continue
            if mine == "inference" and target.startswith(INFERENCE_MAY):
                continue
            out.append(f"{module} ({mine}) imports {target} ({theirs})")
    return out


def test_no_module_imports_a_layer_above_its_own():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself fails on an upward import, inside a function too (a mutant of the layout)."""
    fake = tmp_path / "huescale"
    for sub in ("", "data"):
        (fake / sub).mkdir(parents=True, exist_ok=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "training").mkdir()
    (fake / "training" / "__init__.py").write_text("")
    (fake / "training" / "trainer.py").write_text("")
    (fake / "data" / "store.py").write_text("def f():\n    from huescale.training import trainer\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert violations() == ["huescale.data.store (data) imports huescale.training (training)",
                            "huescale.data.store (data) imports huescale.training.trainer (training)"]
