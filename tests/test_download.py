"""Downloads against a loopback HTTP server that serves an archive of real photographs."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from archives import RangeHandler
from huescale.data.archive_sources import ImagenetteSource
from huescale.data.archives import extract
from huescale.data.download import DownloadError, download
from huescale.data.sources import list_images


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.files, srv.ranges, srv.paths = {}, [], []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _imagenette_tgz(photos: list[Path]) -> bytes:
    """An archive with the real imagenette2-320 layout, from real photographs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i, f in enumerate(photos[:6]):
            split = "train" if i < 4 else "val"
            tf.add(f, arcname=f"imagenette2-320/{split}/n0144076{i % 2}/{f.name}")
    return buf.getvalue()


def _url(srv, name: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{name}"


def test_download_verifies_md5(server, photos, tmp_path):
    data = _imagenette_tgz(photos)
    server.files["/a.tgz"] = data
    dest = download(_url(server, "a.tgz"), tmp_path / "a.tgz", md5=hashlib.md5(data).hexdigest(), progress=False)
    assert dest.read_bytes() == data


def test_checksum_mismatch_leaves_nothing(server, photos, tmp_path):
    server.files["/a.tgz"] = _imagenette_tgz(photos)
    with pytest.raises(DownloadError, match="md5 mismatch"):
        download(_url(server, "a.tgz"), tmp_path / "a.tgz", md5="0" * 32, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".a.tgz.lock"]  # only the (empty) inter-process lock file


def test_resumes_a_partial_download(server, photos, tmp_path):
    data = _imagenette_tgz(photos)
    server.files["/a.tgz"] = data
    half = len(data) // 2
    (tmp_path / "a.tgz.part").write_bytes(data[:half])
    download(_url(server, "a.tgz"), tmp_path / "a.tgz", md5=hashlib.md5(data).hexdigest(), progress=False)
    assert server.ranges == [f"bytes={half}-"]
    assert (tmp_path / "a.tgz").read_bytes() == data
    assert not (tmp_path / "a.tgz.part").exists()


def test_unreachable_host_fails_at_once_with_offline_hint(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused
    with pytest.raises(DownloadError, match="data.source=folder"):
        download(f"http://127.0.0.1:{port}/x.tgz", tmp_path / "x.tgz", md5="0" * 32, retries=0, progress=False)


def test_imagenette_source_end_to_end(server, photos, tmp_path):
    data = _imagenette_tgz(photos)
    server.files["/imagenette2-320.tgz"] = data
    src = ImagenetteSource(_url(server, "imagenette2-320.tgz"), hashlib.md5(data).hexdigest(), tmp_path / "cache")
    refs = list_images(src)
    assert len(refs) == 6
    assert all(r.key.startswith("imagenette/train/") or r.key.startswith("imagenette/val/") for r in refs)
    assert all(Path(r.path).is_file() and len(r.sha256) == 64 for r in refs)
    list_images(src)  # second time: extracted once, nothing downloaded again
    assert len(server.ranges) == 1


def test_extract_refuses_escaping_members(tmp_path):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tf:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(DownloadError, match="refusing"):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()
