"""Every image source against a loopback HTTP server (or a local data set), on real photographs."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archives import LoopbackServer, coco_zip, hf_parquet, imagenette_tgz, voc_tar
from conftest import ROOT, default_params
from huescale.config import DataConfig, HfConfig, HoldoutSourceConfig, ImagenetteConfig
from huescale.data.archive_sources import IMAGENETTE, CocoSource, VocSource
from huescale.data.download import DownloadError
from huescale.data.hf_source import HfSource
from huescale.data.source_base import ImageRef, cache_root
from huescale.data.sources import list_images, make_source, make_test_source
from huescale.data.store_build import build_pair_store, split_for
from huescale.data.subset import sample_order


@pytest.fixture
def loopback():
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def coco_photos(shared_data) -> list[Path]:
    return sorted((shared_data / "coco128" / "train2017").glob("*.jpg"))[:24]


def test_coco_subset_extracts_only_the_sampled_members(loopback, coco_photos, tmp_path):
    url, md5 = loopback.serve("train2017.zip", coco_zip(coco_photos))
    base = url.rsplit("/", 1)[0]
    src = CocoSource(["train2017"], base, {"train2017": md5}, tmp_path / "cache", limit=9, seed=3, progress=False)
    refs = list_images(src)
    all_keys = [f"coco/train2017/{p.name}" for p in coco_photos]
    assert [r.key for r in refs] == sorted(sample_order(all_keys, 3)[:9])  # the same ranking prepare uses
    extracted = list((src.parts[0].root / "train2017").iterdir())  # <cache>/extracted/<url key>/train2017/
    assert len(extracted) == 9  # never the whole archive
    for r in refs:
        assert Path(r.path).read_bytes() == (coco_photos[0].parent / Path(r.key).name).read_bytes()
    bigger = list_images(CocoSource(["train2017"], base, {"train2017": md5}, tmp_path / "cache", limit=15, seed=3,
                                    progress=False))
    assert {r.key for r in refs} < {r.key for r in bigger}  # a larger subset is a superset
    assert loopback.srv.ranges == [None]  # downloaded once, verified once, reused


def test_zip_members_escaping_the_target_are_refused(loopback, coco_photos, tmp_path):
    for i, evil in enumerate(("train2017/../../evil.jpg", "/tmp/huescale-evil.jpg")):
        url, md5 = loopback.serve("train2017.zip", coco_zip(coco_photos[:3], extra={evil: b"\xff\xd8\xffevil"}))
        src = CocoSource(["train2017"], url.rsplit("/", 1)[0], {"train2017": md5}, tmp_path / f"cache{i}",
                         limit=100, progress=False)
        with pytest.raises(DownloadError, match="refusing archive member"):
            src.fetch()
    assert not Path("/tmp/huescale-evil.jpg").exists() and not (tmp_path / "evil.jpg").exists()
    buf = io.BytesIO()  # a symlink member
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(coco_photos[0], f"train2017/{coco_photos[0].name}")
        link = zipfile.ZipInfo("train2017/link.jpg")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    url, md5 = loopback.serve("val2017.zip", buf.getvalue())
    src = CocoSource(["val2017"], url.rsplit("/", 1)[0], {"val2017": md5}, tmp_path / "link", progress=False)
    with pytest.raises(DownloadError, match="link"):
        src.fetch()


def test_voc_takes_jpegimages_only(loopback, shared_data, tmp_path):
    photos = sorted((shared_data / "bsds500" / "train").glob("*.jpg"))[:10]
    url, md5 = loopback.serve("VOCtrainval_11-May-2012.tar", voc_tar(photos))
    refs = list_images(VocSource(url, md5, tmp_path / "cache", progress=False))
    assert sorted(r.key for r in refs) == sorted(f"voc/{p.name}" for p in photos)
    assert all("/VOCdevkit/VOC2012/JPEGImages/" in r.path for r in refs)


def test_imagenette_variants_and_url_override(loopback, shared_data, tmp_path, monkeypatch):
    cfg = DataConfig(source="imagenette", imagenette=ImagenetteConfig(variant="full"), cache_dir=str(tmp_path / "c"))
    src = make_source(cfg)
    assert (src.url, src.md5) == IMAGENETTE["full"]
    assert IMAGENETTE["160"][1] == "e793b78cc4c9e9a4ccc0c1155377a412"
    monkeypatch.setenv("HUESCALE_CACHE", str(tmp_path / "env-cache"))
    url, md5 = loopback.serve("imagenette2-160.tgz", imagenette_tgz(shared_data / "imagenette", "imagenette2-160"))
    cfg.imagenette = ImagenetteConfig(variant="160", url=url, md5=md5)
    assert cache_root(cfg) == tmp_path / "env-cache"
    refs = list_images(make_source(cfg, progress=False))
    assert len(refs) == 2 * 3 * 4
    assert {r.key.split("/")[1] for r in refs} == {"train", "val"}
    assert all(r.path.startswith(str(tmp_path / "env-cache")) for r in refs)  # the env cache wins over cache_dir


@pytest.fixture(scope="module")
def parquet(shared_data, tmp_path_factory) -> tuple[Path, list[Path]]:
    photos = sorted((shared_data / "imagenet_sample").glob("*.JPEG"))[:20]
    return hf_parquet(photos, tmp_path_factory.mktemp("hf") / "train-00000.parquet"), photos


def test_hf_parquet_images_written_once_into_the_cache(parquet, tmp_path):
    path, photos = parquet
    src = HfSource("parquet", "train", "image", tmp_path / "cache", data_files=[str(path)], limit=8, progress=False)
    refs = list_images(src)
    assert len(refs) == 8 and all(r.key.startswith("hf/parquet_") for r in refs)
    originals = {p.read_bytes() for p in photos}
    assert all(Path(r.path).read_bytes() in originals and r.path.endswith(".jpg") for r in refs)
    mtimes = {r.path: os.stat(r.path).st_mtime_ns for r in refs}
    again = list_images(HfSource("parquet", "train", "image", tmp_path / "cache", data_files=[str(path)], limit=8,
                                 progress=False))
    assert [r.key for r in again] == [r.key for r in refs]
    assert {r.path: os.stat(r.path).st_mtime_ns for r in again} == mtimes  # not rewritten


def test_hf_streaming_takes_only_what_is_needed(parquet, tmp_path):
    path, _ = parquet
    src = HfSource("parquet", "train", "image", tmp_path / "cache", data_files=[str(path)], streaming=True, limit=5,
                   progress=False)
    refs = list_images(src)
    assert [r.key.rsplit("/", 1)[1] for r in refs] == [f"{i:08d}" for i in range(5)]
    assert len(list(src.root.iterdir())) == 5
    with pytest.raises(KeyError, match="data.hf.image_column='img'"):
        HfSource("parquet", "train", "img", tmp_path / "c2", data_files=[str(path)], progress=False).fetch()


def test_hf_hub_name_offline_fails_clearly(tmp_path):
    code = ("from huescale.data.hf_source import HfSource\n"
            f"HfSource('huescale-nobody/no-such-set', 'train', 'image', {str(tmp_path)!r}, progress=False).fetch()")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "ConnectionError: data.hf.name=huescale-nobody/no-such-set: cannot reach the Hugging Face hub" in res.stderr
    assert "HF_HUB_OFFLINE=1" in res.stderr and "data.hf.data_files" in res.stderr


def test_test_source_and_split_map(shared_data, tmp_path):
    """COCO-style training folder + ImageNet-val-style test folder; the split depends on the key only."""
    cfg = DataConfig(source="folder", folders=[str(shared_data / "coco128" / "train2017")],
                     splits={"train": 0.8, "val": 0.2, "test": 0.0}, n_images=30, workers=1,
                     test_source=HoldoutSourceConfig(source="folder", folders=[str(shared_data / "bsds500" / "test")],
                                                     n_images=6))
    refs = list_images(make_source(cfg)) + list_images(make_test_source(cfg), split="test")
    m = build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    test = [r for r in m["images"] if r["split"] == "test"]
    assert len(test) == 6 and all(r["key"].startswith("test/") for r in test)  # bsds500/test -> key "test/..."
    assert m["usable"] == 36 and all(r["split"] in ("train", "val") for r in m["images"] if r not in test)
    small = build_pair_store(refs, dataclasses.replace(cfg, n_images=15), tmp_path / "small", progress=False)
    split_of = {r["key"]: r["split"] for r in m["images"]}
    assert all(split_of[r["key"]] == r["split"] for r in small["images"])  # enlarging never moves an image
    mapped = dataclasses.replace(cfg, split_map={"coco/val2017": "test"}, test_source=HoldoutSourceConfig())
    assert split_for(ImageRef("coco/val2017/000000000139.jpg", "", 0, ""), mapped) == "test"
    assert split_for(ImageRef("coco/val2017x/1.jpg", "", 0, ""), mapped) in ("train", "val")


def test_hf_config_defaults_match_params_yaml():
    hf = default_params()["data"]["hf"]
    assert hf == dataclasses.asdict(HfConfig())
