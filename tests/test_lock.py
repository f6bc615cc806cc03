"""requirements.lock matches pyproject.toml: every dependency (and every extra's) is pinned, with hashes,
at a version its specifier allows; a dependency added without re-locking (`bash scripts/lock.sh`) fails."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
# the pins ENVIRONMENT.md explains (newer ones break or do not resolve here)
KNOWN_GOOD = {"torch": "2.14.1", "torchvision": "0.29.1", "prefect": "3.8.8", "mlflow": "3.17.2", "dvc": "3.67.1"}


def lock_pins(text: str) -> dict[str, list[tuple[Version, str | None, int]]]:
    """``{canonical name: [(version, environment marker or None, number of hashes)]}`` of a requirements lock.

    Raises:
        ValueError: a requirement line that is not an exact ``name==version`` pin.
    """
    pins: dict[str, list[tuple[Version, str | None, int]]] = {}
    entries = re.split(r"\n(?=\S)", text)
    for entry in entries:
        first = entry.splitlines()[0].strip() if entry.strip() else ""
        if not first or first.startswith("#"):
            continue
        m = PIN.match(first)
        if not m:
            raise ValueError(f"requirements.lock: not an exact pin: {first!r}")
        name, version, marker = m.groups()
        pins.setdefault(canonicalize_name(name), []).append((Version(version), marker, entry.count("--hash=sha256:")))
    return pins


def check_lock(pyproject: dict, lock_text: str) -> list[str]:
    """What is wrong between a parsed ``pyproject.toml`` and the lock's text (empty list: they match)."""
    pins = lock_pins(lock_text)
    reqs = list(pyproject["project"]["dependencies"])
    for group in pyproject["project"].get("optional-dependencies", {}).values():
        reqs += group
    problems = []
    for line in reqs:
        req = Requirement(line)
        found = pins.get(canonicalize_name(req.name))
        if not found:
            problems.append(f"{req.name}: in pyproject.toml but not in requirements.lock (run: bash scripts/lock.sh)")
            continue
        for version, marker, hashes in found:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}: locked {version}{f' ({marker})' if marker else ''} does not satisfy "
                                f"{req.specifier} of pyproject.toml (run: bash scripts/lock.sh)")
            if hashes == 0:
                problems.append(f"{req.name}: locked without --hash (run: bash scripts/lock.sh)")
    return problems


@pytest.fixture(scope="module")
def project() -> tuple[dict, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text()), (ROOT / "requirements.lock").read_text()


def test_every_dependency_is_locked_at_an_allowed_version_with_hashes(project):
    pyproject, lock = project
    assert check_lock(pyproject, lock) == []


def test_a_dependency_added_without_relocking_fails(project):
    pyproject, lock = project
    pyproject["project"]["dependencies"].append("requests-toolbelt>=1")  # not a dependency of anything here
    assert any("requests-toolbelt" in p and "not in requirements.lock" in p for p in check_lock(pyproject, lock))
    pyproject["project"]["dependencies"][-1] = "mlflow>=3.18"  # a tightened specifier the lock does not meet
    assert any("mlflow" in p and "does not satisfy" in p for p in check_lock(pyproject, lock))


def test_the_known_good_pins_and_their_transitive_caps(project):
    """ENVIRONMENT.md: prefect 3.8.8 needs fastapi < 0.151 and SQLAlchemy < 2.1 (with asyncio's greenlet)."""
    _, lock = project
    pins = lock_pins(lock)
    for name, version in KNOWN_GOOD.items():
        assert [str(v) for v, _, _ in pins[name]] == [version], name
    assert all(v < Version("0.151") for v, _, _ in pins["fastapi"])
    assert all(v < Version("2.1") for v, _, _ in pins["sqlalchemy"]) and "greenlet" in pins


def test_setup_installs_from_the_lock_then_the_package_without_deps():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert re.search(r"uv pip install .*--require-hashes -r requirements\.lock", setup)
    assert re.search(r"uv pip install .*--no-deps -e \.", setup)
    assert "pip install -q -e" not in setup  # no unlocked resolution of pyproject.toml
