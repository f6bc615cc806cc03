"""Hostile file names through the real pipeline, checked in a real browser (issue 13, item 13).

Real photographs are copied under names that are HTML (an ``<img onerror>``, a ``<script>`` element split over
a folder and a file name, an attribute breaker) into a ``folder`` source, which ``data.test_source`` puts in the
test split. ``dvc repro`` then lists, prepares, trains (tiny), evaluates and reports them: the per-image CSV, the
sample keys and the report carry the names. Chromium opens the report and the test checks that no injected code
ran (``window.__xss`` stays undefined) and that the names are shown as text, not by searching the HTML source.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import browser_check, project_env, run_checked, tiny_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

HOSTILE = {  # relative path in the folder -> the key it gets (folder name + "/" + path)
    '<img src=x onerror="window.__xss=1">.jpg': 'hostile/<img src=x onerror="window.__xss=1">.jpg',
    "<script>window.__xss=1</script>.jpg": "hostile/<script>window.__xss=1</script>.jpg",  # a folder + a file
    '" onmouseover="window.__xss=1" data-x=".jpg': 'hostile/" onmouseover="window.__xss=1" data-x=".jpg',
}
XSS = {"xss": "typeof window.__xss", "text": "document.body.innerText"}


def test_the_browser_check_sees_injected_code_run(tmp_path):
    """Positive control: the same check reports ``window.__xss`` when a name is written into HTML unescaped."""
    name = next(iter(HOSTILE))
    page = tmp_path / "unsafe.html"
    page.write_text(f"<!doctype html><html><body><p>{name}</p></body></html>")
    assert browser_check(page, tmp_path / "unsafe.png", evaluate=XSS)["evaluated"]["xss"] == "number"


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_data) -> Path:
    """A tiny project whose test split is three real photographs with hostile names, after `dvc repro`."""
    base = tmp_path_factory.mktemp("hostile")
    folder = base / "hostile"
    photos = sorted((shared_data / "imagenet_sample").glob("*.JPEG"))[:3] or sorted(
        (shared_data / "coco128" / "train2017").glob("*.jpg"))[-3:]
    for rel, photo in zip(HOSTILE, photos):
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, dest)

    def edit(params: dict) -> None:
        params["data"]["test_source"] = {"source": "folder", "folders": [str(folder)], "n_images": 0}
        params["data"]["splits"] = {"train": 0.8, "val": 0.2, "test": 0.0}
        params["train"].update(epochs=1, max_batches=2)

    work = tiny_project(base / "project", shared_data, edit)
    run_checked([Path(sys.executable).parent / "dvc", "repro"], work, project_env(), timeout=1200)
    return work


def test_hostile_names_reach_the_csv_and_the_samples(project):
    with open(project / "eval/per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["key"] for r in rows} == set(HOSTILE.values())  # the test split is exactly the three photos
    samples = json.loads((project / "eval/samples/index.json").read_text())["rows"]
    assert sorted(r["key"] for r in samples) == sorted(HOSTILE.values())


def test_report_with_hostile_names_runs_no_injected_code_in_chromium(project, tmp_path):
    page = browser_check(project / "reports/index.html", tmp_path / "hostile_report.png", evaluate=XSS)
    assert page["evaluated"]["xss"] == "undefined", page["evaluated"]["xss"]
    for key in HOSTILE.values():  # shown to the reader as text
        assert key in page["evaluated"]["text"], key
    assert not page["broken"] and not page["errors"], page
