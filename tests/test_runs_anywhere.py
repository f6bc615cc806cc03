"""A clone with no local photographs beside it runs anywhere: a loopback HTTP server stands in for the internet.

The project is copied to a folder whose parent holds no ``shared/data``; the server serves the release asset of
the test photographs (huescale.data.testphotos) and EDSR's ``benchmark.tar`` layout, both built from the real
photographs. In that clone (1) part of the test suite runs on the fetched photographs and (2) ``dvc repro
benchmark`` with the default ``benchmark`` parameters (registry names) trains on fetched photographs and scores
the fetched Set5, Set14 and BSD100.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter

import pytest

from conftest import project_env, run_checked, tiny_project
from huescale.data import testphotos as tp


@pytest.fixture(scope="module")
def internet(shared_data, tmp_path_factory):
    """The loopback server with the two archives; yields ``(server, {name: (url, checksum)})``."""
    from archives import LoopbackServer, edsr_benchmark_tar

    bundle = tmp_path_factory.mktemp("asset") / tp.BUNDLE_NAME
    sha = tp.build(shared_data, bundle)
    srv = LoopbackServer()
    urls = {"photos": (srv.serve(tp.BUNDLE_NAME, bundle.read_bytes())[0], sha),
            "benchmark": srv.serve("benchmark.tar", edsr_benchmark_tar(shared_data / "benchmarks"))}
    yield srv, urls
    srv.close()


@pytest.fixture(scope="module")
def clone(shared_data, internet, tmp_path_factory):
    """A committed project copy in ``<tmp>/elsewhere/huescale`` (no ``shared/`` beside it) with default
    benchmark parameters (at the loopback mirror) and tiny models."""
    _, urls = internet

    def edit(params):
        params["benchmark"] = {"sets": {"Set5": "Set5", "Set14": "Set14", "BSD100": "BSD100"},
                               "lr_check": {"Set5": "Set5/LRx4", "Set14": "Set14/LRx4"}, "samples": 1,
                               "archive_url": urls["benchmark"][0], "archive_md5": urls["benchmark"][1]}

    home = tmp_path_factory.mktemp("elsewhere")
    work = tiny_project(home / "huescale", shared_data, edit)
    assert not (work.parent / "shared").exists()
    return work


def clone_env(work, internet, cache) -> dict:
    """The clone's environment: its own sources, the loopback URLs, an empty cache, no local photographs."""
    _, urls = internet
    env = project_env(PYTHONPATH=str(work / "src"), HUESCALE_CACHE=str(cache),
                      HUESCALE_TEST_PHOTOS_URL=urls["photos"][0], HUESCALE_BENCHMARK_URL=urls["benchmark"][0])
    for name in ("HUESCALE_TEST_DATA", "HUESCALE_SHARED_DATA"):
        env.pop(name, None)
    return env


def test_the_suite_runs_on_fetched_photographs(clone, internet, tmp_path):
    srv, urls = internet
    env = clone_env(clone, internet, tmp_path / "cache")
    before = len(srv.srv.ranges)
    out = run_checked([env["PATH"].split(os.pathsep)[0] + "/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "tests/test_test_photos.py", "tests/test_benchmark_registry.py",
                       "tests/test_prepare_bad_input.py"], clone, env)
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"=* ?\d+ passed in [\d.]+s( \(.*\))? ?=*", summary), out[-2000:]  # none failed or skipped
    fetched = [p for p in (tmp_path / "cache").rglob(tp.MARKER) if p.is_dir()]
    assert len(fetched) == 1 and tp.is_photo_root(fetched[0].parent)
    assert len(srv.srv.ranges) == before + 1  # one download of the bundle for the whole session


def test_dvc_repro_benchmarks_the_fetched_sets(clone, internet, tmp_path):
    import yaml

    env = clone_env(clone, internet, tmp_path / "cache")
    photos = tp.fetch(tmp_path / "cache", url=internet[1]["photos"][0], progress=False)  # what the tests fetch
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"]["folders"] = [str(photos / "coco128" / "train2017")]
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = run_checked(["dvc", "repro", "benchmark"], clone, env)
    assert "../shared" not in log
    result = json.loads((clone / "eval" / "benchmark" / "result.json").read_text())
    assert set(result["sets"]) == {"Set5", "Set14", "BSD100"} and not result["skipped"], result["skipped"]
    with open(clone / "eval" / "benchmark_per_image.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "bicubic"]
    assert Counter(r["set"] for r in rows) == {"Set5": 5, "Set14": 14, "BSD100": 100}
    assert 25 < result["sets"]["Set5"]["bicubic"]["psnr_y"] < 35  # x4 bicubic on Set5: about 28.4 dB (Y)
    assert set(result["lr_check"]) == {"Set5", "Set14"}
    assert all(c["max_abs_diff"] <= 1 for c in result["lr_check"].values())
    flat = json.loads((clone / "metrics" / "benchmark.json").read_text())
    assert flat["BSD100_bicubic_psnr_y"] == pytest.approx(result["sets"]["BSD100"]["bicubic"]["psnr_y"])
