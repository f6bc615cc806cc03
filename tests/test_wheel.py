"""The package works outside the checkout: a wheel built from the tree, installed into a fresh virtual
environment, runs `huescale colorize` (the shipped model), `huescale benchmark-sr` (its report from the packaged
templates) from a temporary directory that holds no project file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(1200)


def _run(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with only the wheel installed (the dependencies are reused from the project's venv through a .pth
    file, so the test does not download 2 GB of wheels; the project's editable install is not on its path)."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", tmp / "dist"], ROOT)
    (wheel,) = (tmp / "dist").glob("huescale-*.whl")
    env = tmp / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", env], tmp)
    site = next((env / "lib").glob("python3*/site-packages"))
    (site / "_huescale_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    uv = Path(sys.executable).parent / "uv"
    _run([uv, "pip", "install", "--python", env / "bin" / "python", "--no-deps", wheel], tmp)
    return env


def test_the_installed_wheel_colorizes_benchmarks_and_renders_reports_from_any_directory(installed, shared_data,
                                                                                         tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    py, cli = installed / "bin" / "python", installed / "bin" / "huescale"
    where = _run([py, "-c", "import huescale, json; print(json.dumps([huescale.__file__, str(huescale.TEMPLATES)]))"],
                 work, env).stdout
    module, templates = json.loads(where)
    assert str(installed) in module and str(ROOT / "src") not in module  # the wheel's copy, not the checkout
    assert (Path(templates) / "base.html.j2").is_file()
    photo = sorted((shared_data / "bsds500" / "test").glob("*.jpg"))[0]
    res = _run([cli, "colorize", photo, "--out", work / "colour.png", "--scale", "4", "--threads", "2"], work, env)
    assert "shipped model" in res.stderr and (work / "colour.png").is_file()
    from PIL import Image

    with Image.open(photo) as a, Image.open(work / "colour.png") as b:
        assert b.size == (4 * a.size[0], 4 * a.size[1]) and b.mode == "RGB"
    _run([cli, "benchmark-sr", shared_data / "benchmarks/Set5/GTmod12", "--lr", shared_data / "benchmarks/Set5/LRbicx4",
          "--out", work / "bench"], work, env)
    html = (work / "bench" / "benchmark.html").read_text()
    assert "Set5" in html and "<html" in html and "bicubic" in html
    assert not (work / "reports").exists() and not (work / "params.yaml").exists()
