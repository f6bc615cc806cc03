"""The `huescale` command: one error boundary for every command (one line, exit 1; HUESCALE_DEBUG=1: traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUESCALE = str(Path(sys.executable).parent / "huescale")

BAD = {  # command -> what its one-line error must name
    "stage": (["stage", "train", "--params", "nope.yaml"], "nope.yaml"),
    "ablate": (["ablate", "missing_grid.yaml"], "missing_grid.yaml"),
    "profile": (["profile", "no-such-profile"], "no-such-profile"),
    "colorize": (["colorize", "missing_photo.jpg", "--out", "out", "--checkpoint", "missing_colorizer.pt"],
                 "missing_colorizer.pt"),
    "export-onnx": (["export-onnx", "--checkpoint", "missing.pt", "--out", "onnx"], "missing.pt"),
    "benchmark-sr": (["benchmark-sr", "missing_hr_dir", "--out", "bench"], "missing_hr_dir"),
    "score-folder": (["score-folder", "missing_dir", "--checkpoint", "missing.pt"], "missing.pt"),
}


def _run(args: list[str], cwd: Path, debug: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HUESCALE_DEBUG"}
    if debug:
        env["HUESCALE_DEBUG"] = "1"
    return subprocess.run([HUESCALE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("cmd", sorted(BAD))
def test_every_command_fails_with_one_line_naming_the_cause(cmd, tmp_path):
    args, named = BAD[cmd]
    res = _run(args, tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "warn" not in ln.lower()]
    assert res.returncode == 1, res.stderr
    assert lines and lines[-1].startswith(f"huescale {args[1] if cmd == 'stage' else cmd}: error: "), res.stderr
    assert named in lines[-1] and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("cmd", ["colorize", "stage", "profile"])
def test_huescale_debug_shows_the_traceback(cmd, tmp_path):
    args, named = BAD[cmd]
    res = _run(args, tmp_path, debug=True)
    assert res.returncode == 1 and "Traceback (most recent call last)" in res.stderr and named in res.stderr


def test_stage_scripts_share_the_boundary(tmp_path):
    """A DVC stage script with a missing params file: the same one line and exit 1."""
    res = subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), "--params", "absent.yaml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("huescale evaluate: error: ")
    assert "absent.yaml" in res.stderr and "Traceback" not in res.stderr
