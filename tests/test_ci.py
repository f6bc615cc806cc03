"""What keeps CI honest: browser tests cannot be skipped there, and no test can hang it (issue 13, items 13-14)."""

from __future__ import annotations

from conftest import ROOT


def test_ci_script_exports_ci_true_so_browser_tests_cannot_be_skipped():
    """`.ci/run` sets CI=true itself, before pytest (conftest.browser_check fails instead of skipping under CI)."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    exports = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == "export CI=true"]
    pytest_line = next(i for i, line in enumerate(lines) if "pytest" in line and not line.startswith("#"))
    assert exports and exports[0] < pytest_line


def test_every_test_has_a_timeout(pytestconfig):
    """pytest-timeout is configured (pyproject.toml), so a hung test fails instead of blocking CI."""
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed (pip install .[test])"
    assert 60 <= float(pytestconfig.getini("timeout") or 0) <= 1800


def test_slow_end_to_end_modules_set_their_own_longer_timeout():
    """The modules that run `dvc repro` in a module fixture (counted in their first test's time) get longer."""
    import importlib

    for name in ("test_pipeline_e2e", "test_train_stage", "test_flow", "test_hostile_names"):
        marks = importlib.import_module(name).pytestmark
        timeouts = [m.args[0] for m in (marks if isinstance(marks, list) else [marks]) if m.name == "timeout"]
        assert timeouts and timeouts[0] >= 1200, name
