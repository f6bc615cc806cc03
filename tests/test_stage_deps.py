"""dvc.yaml lists exactly the code each stage runs, and the stages agree with huescale.pipeline.stages.STAGES."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # the tool lives in scripts/
from stage_deps import ROOT, closure, declared_modules, imported_modules, stage_entries  # noqa: E402


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_lists_every_module_it_imports_and_no_other():
    """For each stage: the huescale modules of its deps == the transitive imports of its entry script."""
    problems = []
    for name, entry in stage_entries().items():
        deps = _stages()[name]["deps"]
        assert str(entry) in deps, f"{name}: its entry script {entry} is not a dep"
        want, have = closure(ROOT / entry), declared_modules(deps)
        if want - have:
            problems.append(f"{name}: missing {sorted(map(str, want - have))}")
        if have - want:
            problems.append(f"{name}: lists modules it does not import {sorted(map(str, have - want))}")
    assert not problems, "\n".join(problems) + "\n(python scripts/stage_deps.py prints the lists)"


def test_the_dependency_scan_sees_imports_inside_functions(tmp_path):
    """The scan must not miss the lazy imports the stage modules use, nor count type-checking-only ones."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from huescale.training import recipe\n"
                   "def f():\n    from huescale.data.store import PairStore\n    import huescale.metrics\n")
    found = imported_modules(src)
    assert {"huescale.data.store", "huescale.metrics", "huescale.data", "huescale"} <= found
    assert "huescale.training.recipe" not in found
    assert Path("src/huescale/models/generators.py") in closure(ROOT / "stages" / "train.py")
    # load_config checks model and loss names against their registries (issue 23 item 5): every stage imports them
    assert Path("src/huescale/models/generators.py") in closure(ROOT / "stages" / "download.py")
    assert Path("src/huescale/training/trainer.py") not in closure(ROOT / "stages" / "download.py")


def test_dvc_stages_are_the_stage_table():
    from huescale.pipeline.stages import STAGES

    assert tuple(_stages()) == STAGES
    for name in STAGES:
        assert (ROOT / "src" / "huescale" / "pipeline" / "stages" / f"{name}.py").is_file(), name
        assert _stages()[name]["cmd"] == f"python stages/{name}.py"
