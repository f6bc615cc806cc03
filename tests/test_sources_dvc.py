"""`dvc repro prepare` (download + prepare stages, the real DVC) with each data source, in a copy of the project.

The archive sources download from a loopback HTTP server started by the test,
the `hf` source reads a local parquet file built with `datasets`, the `folder`
source a folder of ../shared/data. Each run is checked through the manifest
and the stage metrics it wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from archives import LoopbackServer, coco_zip, hf_parquet, imagenette_tgz, voc_tar
from conftest import copy_project, default_params, project_env, run_checked

# whole `dvc repro` runs: minutes on a quiet machine, much longer on a busy one (pytest-timeout's default is 600 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

N = 12  # usable images asked for


_run = run_checked


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_data):
    """A git + DVC copy of the project, a loopback server with the archives, a local parquet data set."""
    base = tmp_path_factory.mktemp("sources-dvc")
    work = base / "huescale"
    copy_project(work)
    srv = LoopbackServer()
    coco = sorted((shared_data / "coco128" / "train2017").glob("*.jpg"))[:30]
    urls = {
        "coco": srv.serve("train2017.zip", coco_zip(coco)),
        "voc": srv.serve("VOCtrainval_11-May-2012.tar", voc_tar(sorted((shared_data / "bsds500" / "train").glob("*.jpg"))[:20])),
        "imagenette": srv.serve("imagenette2-320.tgz", imagenette_tgz(shared_data / "imagenette", per_class=3, classes=3)),
    }
    parquet = hf_parquet(sorted((shared_data / "imagenet_sample").glob("*.JPEG"))[:24], base / "hf" / "train.parquet")
    bindir = str(Path(sys.executable).parent)
    env = project_env(HUESCALE_CACHE=str(base / "cache"), HF_HOME=str(base / "hf_home"), HF_HUB_OFFLINE="1")
    _run(["git", "init", "-q"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "copy"], work, env)
    yield work, env, urls, parquet, bindir, srv
    srv.close()


def _params(work: Path, source: str, urls: dict, parquet: Path, shared_data: Path) -> dict:
    params = default_params()
    d = params["data"]
    d.update(source=source, n_images=N, min_images=4, workers=1)
    if source == "coco":
        url, md5 = urls["coco"]
        d["coco"].update(base_url=url.rsplit("/", 1)[0], md5={"train2017": md5})
        # mixing sources: COCO for train/val, an ImageNet-val-style folder as the explicit test set
        d["splits"] = {"train": 0.8, "val": 0.2, "test": 0.0}
        d["test_source"] = {"source": "folder", "folders": [str(shared_data / "bsds500" / "test")], "n_images": 4}
    elif source == "voc":
        d["voc"].update(url=urls["voc"][0], md5=urls["voc"][1])
    elif source == "imagenette":
        d["imagenette"].update(url=urls["imagenette"][0], md5=urls["imagenette"][1])
        d["splits"] = {"train": 0.8, "val": 0.2, "test": 0.0}
        d["split_map"] = {"imagenette/val": "test"}  # the source's own val split is the test set
    elif source == "hf":
        d["hf"].update(name="parquet", data_files=[str(parquet)], split="train", image_column="image")
    else:
        d["folders"] = [str(shared_data / "bsds500" / "test")]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return d


@pytest.mark.parametrize("source", ["coco", "voc", "imagenette", "hf", "folder"])
def test_dvc_repro_prepare_with_each_source(project, shared_data, source):
    work, env, urls, parquet, bindir, srv = project
    d = _params(work, source, urls, parquet, shared_data)
    log = _run([f"{bindir}/dvc", "repro", "prepare"], work, env)
    assert "Running stage 'download'" in log and "Running stage 'prepare'" in log
    listing = json.loads((work / "data/raw.json").read_text())
    manifest = json.loads((work / "data/pairs/manifest.json").read_text())
    metrics = json.loads((work / "metrics/prepare.json").read_text())
    prefix = {"coco": "coco/train2017/", "voc": "voc/", "imagenette": "imagenette/", "hf": "hf/parquet_",
              "folder": "test/"}[source]
    main = [r for r in manifest["images"] if r["key"].startswith(prefix)]
    assert len(main) == N  # n_images usable images from the source
    assert manifest["candidates_seen"] == manifest["usable"] + sum(manifest["excluded"].values())
    assert metrics["usable"] == manifest["usable"]
    assert all(metrics[f"excluded_{k}"] == v for k, v in manifest["excluded"].items())
    assert all(Path(r["path"]).is_relative_to(env["HUESCALE_CACHE"]) for r in main) or source == "folder"
    if source == "coco":
        assert listing["count"] == int(N * (1 + d["fetch_margin"])) + 1 + len(list((shared_data / "bsds500" / "test").glob("*.jpg")))
        tests = [r for r in manifest["images"] if r["split"] == "test"]
        assert len(tests) == 4 and all(r["key"].startswith("test/") for r in tests)
        assert {r["split"] for r in main} <= {"train", "val"}
    elif source == "imagenette":
        assert all((r["split"] == "test") == r["key"].startswith("imagenette/val/") for r in main)
    else:
        assert sum(c["64"] for c in manifest["counts"].values()) == manifest["usable"] == N


def test_full_dvc_repro_on_a_downloaded_source(project, shared_data):
    """The whole pipeline (download -> ... -> report) on COCO from the loopback server, mixed with a
    folder as the explicit test set: every stage runs on what the source gave, nothing else."""
    work, env, urls, parquet, bindir, srv = project
    _params(work, "coco", urls, parquet, shared_data)
    params = yaml.safe_load((work / "params.yaml").read_text())
    for phase in (params["pretrain"]["colorizer"], params["pretrain"]["upscaler"], params["train"]):
        phase.update(epochs=1, max_batches=2, batch_size=4)
    params["model"]["colorizer"] = {"name": "colornet", "kwargs": {"depth": 4, "base_channels": 8, "convs": 1,
                                                                   "max_channels": 16, "global_dim": 8}}
    params["evaluate"].update(fid=False, grid_rows=2)
    bench = shared_data / "benchmarks"
    params["benchmark"] = {"sets": {"Set5": str(bench / "Set5/GTmod12")}, "lr_check": {}, "samples": 1}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = _run([f"{bindir}/dvc", "repro"], work, env, timeout=600)
    for stage in ("pretrain", "train", "evaluate", "benchmark", "report"):
        assert f"Running stage '{stage}'" in log
    m = json.loads((work / "metrics.json").read_text())
    assert m["n_test"]["tier_64"] == 4  # the folder test set, not COCO
    assert 0 < m["colorization_64"]["model"]["mae"] < 255 and m["colorization_64"]["model"]["fid"] is None
    assert (work / "reports/index.html").is_file() and (work / "reports/benchmark.html").is_file()


def test_two_clones_dvc_repro_at_once_share_one_download_cache(project, shared_data, tmp_path):
    """Issue 23 (load): two clones of the project run `dvc repro prepare` at the same moment with one
    ``HUESCALE_CACHE`` (a team's machine: ``~/.cache/huescale``). The archive is fetched and extracted once
    (the second run waits on the cache's lock and finds it there), both pair stores hold the same photographs
    byte for byte, and no partial or temporary file is left in the cache or either clone."""
    import subprocess

    from huescale.atomic import TMP_RE

    work, env, urls, parquet, bindir, srv = project
    cache = tmp_path / "shared-cache"
    env = {**env, "HUESCALE_CACHE": str(cache)}
    clones = [tmp_path / name for name in ("alice", "bob")]
    for clone in clones:
        _run(["git", "clone", "-q", work, clone], tmp_path, env)
        _params(clone, "imagenette", urls, parquet, shared_data)
    fetched = srv.srv.paths.count("/imagenette2-320.tgz")  # archive requests before these runs
    procs = [subprocess.Popen([f"{bindir}/dvc", "repro", "prepare"], cwd=c, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in clones]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for clone, proc, out in zip(clones, procs, outs):
        assert proc.returncode == 0, f"{clone.name}:\n{out[-3000:]}"
        assert "Running stage 'prepare'" in out, out[-2000:]
    assert srv.srv.paths.count("/imagenette2-320.tgz") - fetched == 1, "the archive was fetched more than once"
    manifests = [json.loads((c / "data/pairs/manifest.json").read_text()) for c in clones]
    assert manifests[0]["usable"] == manifests[1]["usable"] == N
    assert [r["key"] for r in manifests[0]["images"]] == [r["key"] for r in manifests[1]["images"]]
    shards = [sorted(p.relative_to(c) for p in (c / "data/pairs").rglob("*") if p.is_file() and p.suffix != ".json")
              for c in clones]
    assert shards[0] == shards[1] and shards[0]
    for rel in shards[0]:
        assert (clones[0] / rel).read_bytes() == (clones[1] / rel).read_bytes(), rel
    left = [p for root in (cache, *clones) for p in root.rglob("*")
            if TMP_RE.match(p.name) or p.name.endswith(".part")]
    assert not left, left
    assert [p.name for p in cache.rglob("*.tgz")] == ["imagenette2-320.tgz"]
    assert len(list((cache / "extracted").iterdir())) == 1  # one extraction, used by both
