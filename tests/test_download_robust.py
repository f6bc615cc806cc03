"""Downloads that go wrong, against a real loopback HTTP server; archives that expand too much (issue 13).

- a server that closes the connection mid-body: noticed, the valid prefix kept, resumed with Range;
- no checksum (a custom URL): refused with the param to set, never installed;
- the same file name from two URLs: two cache entries, never one standing in for the other;
- credentials and signatures in the URL: sent as basic auth, never in a message;
- zip / tar bombs: refused from their declared sizes, nothing written; the limits are params.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from archives import imagenette_tgz
from huescale.config import DataConfig, ImagenetteConfig
from huescale.config_io import load_config
from huescale.data.archive_sources import CocoSource, ImagenetteSource
from huescale.data.archives import extract, extract_members
from huescale.data.download import DownloadError, download
from huescale.data.sources import list_images, make_source
from huescale.errors import ConfigError


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; the first ``server.drops`` requests for a file send the full
    Content-Length but close the connection after ``server.cut`` bytes. Range requests get 206 with
    Content-Range. Records the Range and Authorization headers seen."""

    def do_GET(self):  # noqa: N802
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        self.server.auth.append(self.headers.get("Authorization"))
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(data):
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drops > 0:
            self.server.drops -= 1
            self.wfile.write(body[: self.server.cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the peer sees EOF before Content-Length bytes
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    srv.files, srv.ranges, srv.auth, srv.drops, srv.cut = {}, [], [], 0, 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv, name: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{name}"


@pytest.fixture(scope="module")
def archive(shared_data) -> bytes:
    """A real imagenette2-320-layout archive of real photographs (~1 MB)."""
    return imagenette_tgz(shared_data / "imagenette", "imagenette2-320", per_class=4, classes=3)


def test_connection_closed_mid_body_is_resumed_with_range(flaky, archive, tmp_path):
    """The first response stops after 100 kB of a longer body: the next attempt asks for the rest."""
    flaky.files["/a.tgz"] = archive
    flaky.drops, flaky.cut = 1, 100_000
    dest = download(_url(flaky, "a.tgz"), tmp_path / "a.tgz", md5=hashlib.md5(archive).hexdigest(), retries=1,
                    progress=False)
    assert dest.read_bytes() == archive
    assert flaky.ranges == [None, "bytes=100000-"]  # resumed, not restarted
    assert not (tmp_path / "a.tgz.part").exists()


def test_dropped_transfer_keeps_its_prefix_for_the_next_run(flaky, archive, tmp_path):
    """Out of retries: the error names URL, file and what to do; the next run resumes the kept bytes."""
    flaky.files["/a.tgz"] = archive
    flaky.drops, flaky.cut = 1, 70_000
    url = _url(flaky, "a.tgz")
    with pytest.raises(DownloadError) as e:
        download(url, tmp_path / "a.tgz", md5=hashlib.md5(archive).hexdigest(), retries=0, progress=False)
    msg = str(e.value)
    assert url in msg and "a.tgz" in msg and "resume" in msg and "70000 bytes" in msg
    assert (tmp_path / "a.tgz.part").read_bytes() == archive[:70_000]
    assert not (tmp_path / "a.tgz").exists()
    download(url, tmp_path / "a.tgz", md5=hashlib.md5(archive).hexdigest(), retries=0, progress=False)
    assert (tmp_path / "a.tgz").read_bytes() == archive and flaky.ranges[-1] == "bytes=70000-"


def test_size_only_archive_is_checked_and_resumed(flaky, archive, tmp_path):
    """With no checksum, a known size is the least accepted; a truncated body never gets installed."""
    flaky.files["/a.tgz"] = archive
    flaky.drops, flaky.cut = 1, 50_000
    download(_url(flaky, "a.tgz"), tmp_path / "a.tgz", size=len(archive), retries=1, progress=False)
    assert (tmp_path / "a.tgz").read_bytes() == archive
    with pytest.raises(DownloadError, match="expected 123"):  # the server's size contradicts the param
        download(_url(flaky, "a.tgz"), tmp_path / "b.tgz", size=123, retries=0, progress=False)


def test_archive_without_checksum_is_refused_with_the_param_to_set(flaky, archive, tmp_path):
    """A custom URL without md5 used to install a truncated archive forever; now it is refused up front."""
    flaky.files["/imagenette2-320.tgz"] = archive
    url = _url(flaky, "imagenette2-320.tgz")
    with pytest.raises(DownloadError, match="data.imagenette.md5") as e:
        ImagenetteSource(url, None, tmp_path / "cache", progress=False).fetch()
    assert url in str(e.value) and "imagenette2-320.tgz" in str(e.value)
    assert flaky.ranges == [] and not list((tmp_path / "cache").rglob("*.tgz"))  # nothing fetched or installed
    p = tmp_path / "params.yaml"  # config validation names the param too
    p.write_text(yaml.safe_dump({"data": {"source": "imagenette", "imagenette": {"url": url}}}))
    with pytest.raises(ConfigError, match="data.imagenette.md5"):
        load_config(p)
    p.write_text(yaml.safe_dump({"data": {"source": "voc", "voc": {"md5": ""}}}))
    with pytest.raises(ConfigError, match="data.voc.md5"):
        load_config(p)


def test_same_file_name_from_two_urls_gets_two_cache_entries(flaky, shared_data, tmp_path):
    """Two different archives both named imagenette2-320.tgz: each source lists its own photographs."""
    a = imagenette_tgz(shared_data / "imagenette", "imagenette2-320", per_class=2, classes=2)
    flaky.files["/mirror-a/imagenette2-320.tgz"] = a
    buf = io.BytesIO()  # same layout and member names, other photographs
    with tarfile.open(fileobj=buf, mode="w:gz") as tf, tarfile.open(fileobj=io.BytesIO(a)) as src:
        others = sorted((shared_data / "bsds500" / "train").glob("*.jpg"))
        for m, photo in zip([m for m in src.getmembers() if m.isfile()], others):
            tf.add(photo, arcname=m.name)
    b = buf.getvalue()
    flaky.files["/mirror-b/imagenette2-320.tgz"] = b
    cache = tmp_path / "cache"
    srcs = [ImagenetteSource(_url(flaky, f"mirror-{k}/imagenette2-320.tgz"), hashlib.md5(d).hexdigest(), cache,
                             progress=False) for k, d in (("a", a), ("b", b))]
    refs = [list_images(s) for s in srcs]
    assert srcs[0].archive != srcs[1].archive and srcs[0].root != srcs[1].root
    assert srcs[0].archive.name == srcs[1].archive.name == "imagenette2-320.tgz"
    assert [r.key for r in refs[0]] == [r.key for r in refs[1]]  # same keys ...
    assert {r.sha256 for r in refs[0]}.isdisjoint({r.sha256 for r in refs[1]})  # ... different photographs
    with tarfile.open(fileobj=io.BytesIO(b)) as tf:
        want = {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    assert all(Path(r.path).read_bytes() == want[r.key.removeprefix("imagenette/")] for r in refs[1])
    from huescale.data.download import cache_path

    signed = "https://example.org/x/imagenette2-320.tgz?X-Amz-Signature="  # re-signed URLs share one entry
    assert cache_path(cache, signed + "aaa") == cache_path(cache, signed + "bbb") != cache_path(cache, _url(flaky, "x"))


def test_credentials_go_as_basic_auth_and_never_into_messages(flaky, archive, tmp_path):
    secret_url = "http://user:secret@127.0.0.1:1/x.tgz?X-Amz-Signature=abc&v=1"  # port 1: connection refused
    with pytest.raises(DownloadError) as e:
        download(secret_url, tmp_path / "x.tgz", md5="0" * 32, retries=0, progress=False)
    msg = str(e.value)
    assert "secret" not in msg and "abc" not in msg
    assert "127.0.0.1:1/x.tgz" in msg and "x.tgz" in msg and "data.source=folder" in msg
    flaky.files["/a.tgz"] = archive
    url = _url(flaky, "a.tgz").replace("http://", "http://huescale:p%40ss@") + "?sig=zz"
    flaky.files["/a.tgz?sig=zz"] = archive
    download(url, tmp_path / "a.tgz", md5=hashlib.md5(archive).hexdigest(), progress=False)
    assert flaky.auth[-1] == "Basic " + base64.b64encode(b"huescale:p@ss").decode()
    with pytest.raises(DownloadError) as e:  # an HTTP error on a signed URL
        download(url.replace("a.tgz", "missing.tgz"), tmp_path / "m.tgz", md5="0" * 32, progress=False)
    assert "HTTP 404" in str(e.value) and "p%40ss" not in str(e.value) and "zz" not in str(e.value)


def _zip_bomb(path: Path, mb: int = 40) -> Path:
    """A ~40 kB zip declaring 40 MB of zeros in one 'image' member (deflate: ~1000x)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("train2017/000000000001.jpg", "w") as f:
            block = bytes(1 << 20)
            for _ in range(mb):
                f.write(block)
    return path


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DownloadError, match="data.max_extract_ratio") as e:
        extract(bomb, tmp_path / "out")
    assert "bomb.zip" in str(e.value)
    with pytest.raises(DownloadError, match="data.max_extract_ratio"):
        extract_members(bomb, tmp_path / "sel", {"train2017/000000000001.jpg": tmp_path / "sel" / "a.jpg"})
    assert [p for p in tmp_path.rglob("*") if p != bomb] == []  # nothing extracted, not even a folder
    # a legitimate archive under the same limits extracts; max_bytes refuses it when set below its size
    ok = tmp_path / "ok.zip"
    with zipfile.ZipFile(ok, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a/readme.txt", b"hello " * 1000)
    assert (extract(ok, tmp_path / "okout") / "a" / "readme.txt").read_bytes() == b"hello " * 1000
    with pytest.raises(DownloadError, match="data.max_extract_bytes"):
        extract(ok, tmp_path / "okout2", max_bytes=100)


def test_tar_bomb_and_coco_source_bomb_are_refused(loopback_srv, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("imagenette2-320/train/n0/zeros.JPEG")
        info.size = 30 << 20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    tgz = tmp_path / "bomb.tgz"
    tgz.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="data.max_extract_ratio"):
        extract(tgz, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    data = _zip_bomb(tmp_path / "train2017.zip").read_bytes()  # through the COCO source, from the server
    url, md5 = loopback_srv.serve("train2017.zip", data)
    src = CocoSource(["train2017"], url.rsplit("/", 1)[0], {"train2017": md5}, tmp_path / "cache", limit=5,
                     progress=False)
    with pytest.raises(DownloadError, match="decompression bomb"):
        src.fetch()
    assert not [p for p in (tmp_path / "cache").rglob("*.jpg")]
    cfg = DataConfig(source="imagenette", imagenette=ImagenetteConfig(url=url, md5=md5), max_extract_ratio=5000,
                     max_extract_bytes=1000, cache_dir=str(tmp_path / "c2"))
    s = make_source(cfg, progress=False)  # the params reach the source
    assert (s.max_extract_ratio, s.max_extract_bytes) == (5000, 1000)


def test_extract_members_is_safe_by_itself(archive, tmp_path):
    """Issue 23 item 7: the public ``extract_members`` bounds what it writes by the ratio and the total, whatever
    its caller checked: a tar.gz bomb, and a zip of members each too small for the per-member check (under 1 MB)
    but together ~1000x the archive, are refused with nothing written; a real archive still extracts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("imagenette2-320/train/n0/zeros.JPEG")
        info.size = 30 << 20
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    tgz = tmp_path / "bomb.tgz"
    tgz.write_bytes(buf.getvalue())
    assert tgz.stat().st_size < 200_000
    sel = tmp_path / "sel"
    with pytest.raises(DownloadError, match="data.max_extract_ratio") as e:
        extract_members(tgz, sel, {"imagenette2-320/train/n0/zeros.JPEG": sel / "z.JPEG"}, progress=False)
    assert "bomb.tgz" in str(e.value)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"train2017/{i:012d}.jpg", bytes((1 << 20) - 1))
    assert many.stat().st_size < 200_000
    with zipfile.ZipFile(many) as zf:
        names = [i.filename for i in zf.infolist()]
    with pytest.raises(DownloadError, match="data.max_extract_ratio"):
        extract_members(many, tmp_path / "sel2", {n: tmp_path / "sel2" / n for n in names}, progress=False)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p not in (tgz, many)]
    assert written == []  # not one byte of either bomb
    real = tmp_path / "real.tgz"
    real.write_bytes(archive)
    with tarfile.open(real) as tf:
        member = next(m for m in tf.getmembers() if m.isfile())
        want = tf.extractfile(member).read()
    out = tmp_path / "ok" / "a.JPEG"
    assert extract_members(real, tmp_path / "ok", {member.name: out}, progress=False) == 1
    assert out.read_bytes() == want
    with pytest.raises(DownloadError, match="data.max_extract_bytes"):  # the total limit alone still holds
        extract_members(real, tmp_path / "ok2", {member.name: tmp_path / "ok2" / "a.JPEG"}, progress=False,
                        max_bytes=100)


def test_extract_limits_are_validated_params(tmp_path):
    p = tmp_path / "params.yaml"
    for bad in ({"max_extract_ratio": 0.5}, {"max_extract_bytes": 0}):
        p.write_text(yaml.safe_dump({"data": bad}))
        with pytest.raises(ConfigError, match="data.max_extract_ratio must be >= 1"):
            load_config(p)
    root = Path(__file__).resolve().parents[1]
    from conftest import default_params

    d = default_params(root)["data"]  # as committed: the profiles in params/ are overlays
    assert d["max_extract_ratio"] == 200 and d["max_extract_bytes"] == 100_000_000_000


@pytest.fixture
def loopback_srv():
    from archives import LoopbackServer

    srv = LoopbackServer()
    yield srv
    srv.close()


def test_truncated_archive_fails_with_a_clear_message_not_a_bare_eoferror(archive, tmp_path):
    """What a truncated download used to become (EOFError deep in tarfile): now named, with what to do."""
    from huescale.data.archives import archive_members

    bad = tmp_path / "imagenette2-320.tgz"
    bad.write_bytes(archive[: len(archive) * 6 // 10])
    for call in (lambda: extract(bad, tmp_path / "out"), lambda: archive_members(bad)):
        with pytest.raises(DownloadError, match="corrupt or truncated") as e:
            call()
        assert str(bad) in str(e.value) and "delete it" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_an_archive_of_the_old_cache_layout_is_adopted_not_downloaded_again(flaky, archive, tmp_path):
    """Before issue 13 the cache was <cache>/downloads/<name>: a copy with the right md5 moves to its URL key."""
    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "imagenette2-320.tgz").write_bytes(archive)
    flaky.files["/imagenette2-320.tgz"] = archive
    src = ImagenetteSource(_url(flaky, "imagenette2-320.tgz"), hashlib.md5(archive).hexdigest(), cache, progress=False)
    assert len(list_images(src)) == 2 * 3 * 4 and flaky.ranges == []  # nothing downloaded
    assert src.archive.read_bytes() == archive and not (cache / "downloads" / "imagenette2-320.tgz").exists()


def test_archive_guards_on_their_edges(tmp_path):
    """The guards of huescale.data.archives one by one, at their boundaries (cases the mutation run of
    docs/reliability.md found untested): each refusal names the archive, the member or the param to change."""
    from huescale.data.archives import _check_member, _copy_limited, _zip_is_link, check_expansion
    from huescale.data.download import DownloadError

    arc = tmp_path / "a.zip"
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path, target_is_directory=True)  # a folder link that leaves the root
    _check_member(root, "photos/x.jpg", False, arc)  # a plain member passes
    for name, link in (("/etc/passwd", False), ("a/../../x.jpg", False), ("out/x.jpg", False), ("x.jpg", True)):
        with pytest.raises(DownloadError, match=rf"a\.zip: refusing archive member .*{Path(name).name}.*delete it"):
            _check_member(root, name, link, arc)

    def zinfo(mode: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo("m")
        info.external_attr = mode << 16
        return info

    assert _zip_is_link(zinfo(0o120777)) and not _zip_is_link(zinfo(0o100644))
    assert not _zip_is_link(zinfo(0o040755)) and not _zip_is_link(zinfo(0o120001 ^ 0o020000))

    data = bytes(range(256)) * (3 * 4096)  # 3 MiB: three blocks of the 1 MiB copy
    for declared, budget, ok in ((len(data), len(data), True),  # exactly the declared size and the budget
                                 (len(data) - 1, len(data), False),  # one byte more than declared
                                 (2 << 20, len(data), False),  # every block fits, their sum does not
                                 (len(data), len(data) - 1, False)):  # over the remaining budget
        out, left = io.BytesIO(), [budget]
        if ok:
            _copy_limited(io.BytesIO(data), out, declared, "m", arc, left)
            assert out.getvalue() == data and left == [budget - len(data)]
        else:
            with pytest.raises(DownloadError, match=r"member 'm' expands beyond .*data\.max_extract_ratio"):
                _copy_limited(io.BytesIO(data), out, declared, "m", arc, left)

    arc.write_bytes(b"x" * 1000)
    check_expansion(arc, 100 * 1000, max_ratio=100)  # exactly the ratio: accepted
    with pytest.raises(DownloadError, match=r"a\.zip: declares 0\.1 MB of content in 0\.001 MB \(x100 > "
                                            r"data\.max_extract_ratio=100\)"):
        check_expansion(arc, 100 * 1000 + 1, max_ratio=100)
    check_expansion(arc, 5000, max_ratio=100, max_bytes=5000)  # exactly the byte limit: accepted
    with pytest.raises(DownloadError, match=r"would write 0\.00 GB \(> data\.max_extract_bytes=0\.00 GB\).*"
                                            r"raise data\.max_extract_bytes"):
        check_expansion(arc, 5000, max_ratio=100, max_bytes=4999)
    with pytest.raises(DownloadError, match="max_extract_bytes"):  # the subset extracted counts, not the listing
        check_expansion(arc, 100, max_ratio=100, max_bytes=4999, extract_bytes=5000)
    check_expansion(arc, 100, max_ratio=100, max_bytes=4999, extract_bytes=4999)
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    check_expansion(empty, 100, max_ratio=100)  # a 0-byte file counts as 1 byte
    with pytest.raises(DownloadError, match="max_extract_ratio"):
        check_expansion(empty, 101, max_ratio=100)


def test_every_kind_of_link_or_device_member_refuses_the_whole_archive(tmp_path):
    """A tar's symbolic link, hard link, character or block device or FIFO, a zip's symlink: each alone makes
    archive_listing refuse the archive, naming it and the member; a file that is no archive is named too."""
    from huescale.data.archives import archive_listing
    from huescale.data.download import DownloadError

    def tar_with(kind: bytes, name: str) -> Path:
        path = tmp_path / f"{name}.tar"
        with tarfile.open(path, "w") as tf:
            ok = tarfile.TarInfo("photos/a.jpg")
            ok.size = 3
            tf.addfile(ok, io.BytesIO(b"abc"))
            bad = tarfile.TarInfo(f"photos/{name}")
            bad.type, bad.linkname = kind, "photos/a.jpg"
            tf.addfile(bad)
        return path

    assert archive_listing(tar_with(tarfile.REGTYPE, "plain")) == {"photos/a.jpg": 3, "photos/plain": 0}
    for kind, name in ((tarfile.SYMTYPE, "sym"), (tarfile.LNKTYPE, "hard"), (tarfile.CHRTYPE, "chr"),
                       (tarfile.BLKTYPE, "blk"), (tarfile.FIFOTYPE, "fifo")):
        path = tar_with(kind, name)
        with pytest.raises(DownloadError, match=rf"{name}\.tar: refusing archive member 'photos/{name}'"):
            archive_listing(path)
    zpath = tmp_path / "link.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        info = zipfile.ZipInfo("photos/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "a.jpg")
    with pytest.raises(DownloadError, match=r"link\.zip: refusing archive member 'photos/link'"):
        archive_listing(zpath)
    (tmp_path / "not.tar").write_bytes(b"this is no archive" * 100)
    with pytest.raises(DownloadError, match=r"not\.tar: not a tar or zip archive; delete it"):
        archive_listing(tmp_path / "not.tar")
