"""The code each DVC stage runs: the transitive ``huescale`` imports of its entry script.

``python scripts/stage_deps.py`` prints, for every stage of ``dvc.yaml``, the module files its
``cmd`` imports (directly or through other huescale modules, at top level or inside
functions, package ``__init__`` files included): what its ``deps`` must list;
``python scripts/stage_deps.py --write`` puts them into ``dvc.yaml``.
``tests/test_stage_deps.py`` fails when ``dvc.yaml`` and this disagree.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_file(name: str) -> Path | None:
    """``huescale.a.b`` -> ``src/huescale/a/b.py`` or ``src/huescale/a/b/__init__.py`` (None if neither)."""
    base = SRC.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _packages(name: str) -> list[str]:
    """The packages imported on the way to ``name``: ``huescale.a.b`` -> ``huescale``, ``huescale.a``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(path: Path) -> set[str]:
    """The ``huescale`` modules a file imports anywhere in it (``import x``, ``from x import y`` where ``y`` may
    itself be a module), except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                 for n in ast.walk(node)}  # imports for type hints only never run
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if n.split(".")[0] == "huescale" and _module_file(n) is not None:
                found.add(n)
                found.update(_packages(n))
    return found


def closure(entry: Path) -> set[Path]:
    """Every huescale module file that running ``entry`` can import, relative to the project root."""
    todo, seen = list(imported_modules(entry)), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported_modules(_module_file(name)) - seen)
    return {_module_file(n).relative_to(ROOT) for n in seen}


def stage_entries() -> dict[str, Path]:
    """Stage name -> its entry script, from the ``cmd`` of each stage in ``dvc.yaml`` (``python <script>``)."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: Path(s["cmd"].split()[1]) for name, s in stages.items()}


def declared_modules(deps: list[str]) -> set[Path]:
    """The ``src/huescale`` module files a stage's ``deps`` cover (folders expanded to their ``.py`` files)."""
    out: set[Path] = set()
    for d in deps:
        p = ROOT / d
        if p.is_dir() and (p == SRC / "huescale" or SRC / "huescale" in p.parents):
            out |= {f.relative_to(ROOT) for f in p.rglob("*.py")}
        elif p.suffix == ".py" and SRC in p.parents:
            out.add(p.relative_to(ROOT))
    return out


def code_deps(entry: Path) -> list[str]:
    """The code deps of a stage as ``dvc.yaml`` lists them: its entry script, then its module files, a whole
    package folder when every module of it is imported."""
    items: set[Path] = set(closure(ROOT / entry))
    for folder in sorted({p.parent for p in items if p.parent != SRC / "huescale"}):
        every = {f.relative_to(ROOT) for f in (ROOT / folder).rglob("*.py")}
        if every <= items:
            items = (items - every) | {folder}
    return [str(entry)] + sorted(str(p) for p in items)


def write_dvc_yaml() -> None:
    """Rewrite the code entries of every stage's ``deps`` in ``dvc.yaml`` (comments and the other deps kept)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # the file's own style
    doc = yaml.load((ROOT / "dvc.yaml").read_text())
    for name, entry in stage_entries().items():
        deps = doc["stages"][name]["deps"]
        others = [d for d in deps if not (str(d).startswith("src/huescale") or str(d).startswith("stages/"))]
        deps.clear()
        deps.extend(code_deps(entry) + others)
    with open(ROOT / "dvc.yaml", "w") as f:
        yaml.dump(doc, f)


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_dvc_yaml()
        print("dvc.yaml: code deps rewritten")
    else:
        for stage, entry in stage_entries().items():
            print(f"{stage}:")
            for p in code_deps(entry):
                print(f"  - {p}")
    sys.exit(0)
