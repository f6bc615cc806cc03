"""The test photographs as a fetched, SHA-256-pinned data source (huescale.data.testphotos), served by a loopback
HTTP server standing in for the release asset: the bundle is rebuilt from the real photographs the suite uses."""

from __future__ import annotations

import hashlib

import pytest

from huescale.data import testphotos as tp
from huescale.data.download import DownloadError


@pytest.fixture(scope="module")
def bundle(shared_data, tmp_path_factory) -> bytes:
    """The bundle built from the photographs this run uses (a local copy, or the fetched bundle itself)."""
    out = tmp_path_factory.mktemp("bundle") / tp.BUNDLE_NAME
    tp.build(shared_data, out)
    return out.read_bytes()


@pytest.fixture
def server():
    from archives import LoopbackServer

    srv = LoopbackServer()
    yield srv
    srv.close()


def test_the_bundle_is_reproducible_and_is_the_pinned_one(bundle, shared_data, tmp_path):
    assert hashlib.sha256(bundle).hexdigest() == tp.BUNDLE_SHA256
    again = tmp_path / "again.tar"
    assert tp.build(shared_data, again) == tp.BUNDLE_SHA256
    with pytest.raises(FileExistsError, match="delete it"):
        tp.build(shared_data, again)  # never overwritten
    names = [name for _, name in tp.select(shared_data)]
    assert names == sorted(names) and len(names) == len(set(names))
    assert {n.split("/")[0] for n in names} == {"imagenet_sample", "bsds500", "coco128", "benchmarks", "imagenette"}
    assert sum(n.startswith("imagenette/val/") for n in names) == tp.IMAGENETTE_CLASSES * tp.IMAGENETTE_PER_CLASS


def test_fetched_once_verified_and_laid_out_like_the_local_copy(bundle, server, shared_data, tmp_path):
    url, _ = server.serve(tp.BUNDLE_NAME, bundle)
    root = tp.locate(None, [tmp_path / "no-local-copy"], tmp_path / "cache", url=url, progress=False)
    assert tp.is_photo_root(root) and root.is_relative_to(tmp_path / "cache")
    fetched = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert fetched == [name for _, name in tp.select(shared_data)]
    some = "bsds500/test/" + sorted(p.name for p in (shared_data / "bsds500/test").glob("*.jpg"))[7]
    assert (root / some).read_bytes() == (shared_data / some).read_bytes()
    assert len(server.srv.ranges) == 1
    assert tp.locate(None, [], tmp_path / "cache", url=url, progress=False) == root
    assert len(server.srv.ranges) == 1  # cached: nothing downloaded again


def test_a_local_copy_or_an_explicit_folder_wins_and_nothing_is_downloaded(shared_data, tmp_path):
    dead = "http://127.0.0.1:9/" + tp.BUNDLE_NAME  # discard port: any download attempt fails at once
    assert tp.locate(None, [tmp_path / "missing", shared_data], tmp_path / "cache", url=dead) == shared_data
    assert tp.locate(str(tmp_path / "mine"), [shared_data], tmp_path / "cache", url=dead) == tmp_path / "mine"
    assert not (tmp_path / "cache").exists()
    with pytest.raises(DownloadError, match="HUESCALE_TEST_DATA"):
        tp.locate(None, [tmp_path / "missing"], tmp_path / "cache", url=dead, progress=False)


def test_a_tampered_bundle_is_refused_and_deleted(bundle, server, tmp_path):
    middle = len(bundle) // 2  # one flipped byte inside a photograph (the tail is the tar's zero padding)
    url, _ = server.serve(tp.BUNDLE_NAME, bundle[:middle] + bytes([bundle[middle] ^ 0xFF]) + bundle[middle + 1:])
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        tp.fetch(tmp_path / "cache", url=url, progress=False)
    assert not any((tmp_path / "cache").rglob(tp.BUNDLE_NAME)) and not any((tmp_path / "cache").rglob("*.JPEG"))
