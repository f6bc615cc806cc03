"""Logs a person can read: progress bars do not flood output that is not a terminal (DVC, CI, Prefect).

The real `huescale colorize` and the real `pretrain` stage run with stdout/stderr captured (pipes, not
a TTY); their output holds a few lines per image / epoch and no ``\\r`` redraws.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import default_params

BIN = Path(sys.executable).parent


def _quiet_env(**extra: str) -> dict:
    env = {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ["PATH"], "OMP_NUM_THREADS": "1", **extra}
    for k in ("HUESCALE_PROGRESS_INTERVAL", "HUESCALE_PARENT_RUN_ID", "MLFLOW_TRACKING_URI"):
        env.pop(k, None)
    return env


def _noise(out: str) -> list[str]:
    """Lines that are not warnings (library deprecation notes are not ours to count)."""
    return [ln for ln in out.splitlines() if ln.strip() and "warn" not in ln.lower()]


def test_colorize_prints_no_bar_lines_when_not_a_terminal(shared_data, tmp_path):
    from huescale import models
    from huescale.training import checkpoint

    torch.manual_seed(0)
    checkpoint.save_model(models.build("unet", depth=3, base_channels=8), "unet", {"depth": 3, "base_channels": 8},
                          tmp_path / "colorizer.pt")
    photos = sorted((shared_data / "imagenet_sample").glob("*.JPEG"))[:6]
    assert len(photos) == 6
    res = subprocess.run([BIN / "huescale", "colorize", *photos, "--out", tmp_path / "out", "--checkpoint",
                          tmp_path / "colorizer.pt", "--tile", "64", "--threads", "1"],
                         env=_quiet_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list((tmp_path / "out").iterdir())) == 6
    out = res.stdout + res.stderr
    assert "\r" not in out, out[-2000:]
    assert len(_noise(out)) <= 2, out[-2000:]  # nothing per image or per tile (each image has >= 8 tiles)


def _tiny_project(work: Path, shared_data: Path) -> None:
    """A pair store of 60 real photos and params for a few-batch pre-training in ``work``."""
    from huescale.config import DataConfig
    from huescale.data.source_base import FolderSource
    from huescale.data.sources import list_images
    from huescale.data.store_build import build_pair_store

    refs = list_images(FolderSource([shared_data / "coco128" / "train2017"]))
    build_pair_store(refs, DataConfig(source="folder", folders=["x"], n_images=60, workers=1), work / "data" / "pairs",
                     progress=False)
    params = default_params()
    params["model"]["colorizer"] = {"name": "unet", "kwargs": {"depth": 3, "base_channels": 8}}
    params["model"]["upscaler"] = {"name": "espcn", "kwargs": {"scale": 4, "residual": True}}
    params["pretrain"]["colorizer"].update(epochs=3, max_batches=4, batch_size=8, losses={"l1": 1.0})
    params["train"]["losses"] = {"l1": 100.0, "gan": 1.0}  # the U-Net has no classification head
    params["pretrain"]["upscaler"].update(epochs=2, max_batches=2, batch_size=4)
    params["runtime"]["threads"] = 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_real_stage_logs_a_few_lines_per_epoch_and_no_bar_redraws(shared_data, tmp_path):
    _tiny_project(tmp_path, shared_data)
    res = subprocess.run([BIN / "huescale", "stage", "pretrain"], cwd=tmp_path, env=_quiet_env(),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    epochs = 3 + 2
    assert "\r" not in out, out[-2000:]
    assert out.count("epoch ") >= epochs  # the one summary line per epoch is there
    assert len(_noise(out)) <= 3 * epochs + 10, out[-3000:]  # ~1 per epoch, MLflow's and the stage's lines


def test_a_long_loop_in_a_log_prints_one_plain_line_per_interval(monkeypatch):
    from huescale.progress import bar

    monkeypatch.setenv("HUESCALE_PROGRESS_INTERVAL", "0.2")
    log = io.StringIO()  # not a terminal
    with bar(total=30, desc="work", file=log) as b:
        for i in range(30):
            time.sleep(0.04)  # 1.2 s in all: ~5 intervals
            b.set_postfix(step=i)  # must not force a line each time
            b.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert 2 <= len(lines) <= 9 and lines[-1].startswith("work: 100%"), lines


def test_a_short_loop_in_a_log_prints_nothing_and_a_terminal_gets_the_usual_bar(monkeypatch):
    from huescale.progress import bar

    log = io.StringIO()
    for _ in bar(range(100), desc="quick", file=log):
        pass
    assert log.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    for _ in bar(range(100), desc="quick", file=tty, mininterval=0):
        pass
    assert "\r" in tty.getvalue() and "quick: 100%" in tty.getvalue()


@pytest.mark.parametrize("bad", ["soon", "1m"])
def test_a_bad_interval_names_the_variable(monkeypatch, bad):
    from huescale.progress import bar

    monkeypatch.setenv("HUESCALE_PROGRESS_INTERVAL", bad)
    with pytest.raises(ValueError, match="HUESCALE_PROGRESS_INTERVAL"):
        bar(range(3), file=io.StringIO())
