"""Test helpers: archives with the real layouts of the published data sets, built from real photographs,
and a loopback HTTP server (with Range support) that serves them."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[path]`` with HTTP Range support; records the paths asked for and the Range headers
    seen."""

    def do_GET(self):  # noqa: N802
        self.server.paths.append(self.path)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(data):
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackServer:
    """A threaded ``http.server`` on 127.0.0.1 (random port) serving in-memory files."""

    def __init__(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
        self.srv.files, self.srv.ranges, self.srv.paths = {}, [], []
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, name: str, data: bytes) -> tuple[str, str]:
        """Serve ``data`` at ``/<name>``; returns ``(url, md5)``."""
        self.srv.files["/" + name] = data
        return self.url(name), hashlib.md5(data).hexdigest()

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.srv.server_address[1]}/{name}"

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def coco_zip(photos: list[Path], folder: str = "train2017", extra: dict[str, bytes] | None = None) -> bytes:
    """A COCO 2017 image zip: ``<folder>/<12-digit id>.jpg`` (the real layout), stored uncompressed like COCO's."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(f"{folder}/"), b"")
        for f in photos:
            zf.write(f, f"{folder}/{f.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def voc_tar(photos: list[Path]) -> bytes:
    """A VOC2012 trainval tar: ``VOCdevkit/VOC2012/JPEGImages/*.jpg`` plus an annotation that is not an image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for f in photos:
            tf.add(f, arcname=f"VOCdevkit/VOC2012/JPEGImages/{f.name}")
        note = b"<annotation><filename>x.jpg</filename></annotation>"
        info = tarfile.TarInfo("VOCdevkit/VOC2012/Annotations/x.xml")
        info.size = len(note)
        tf.addfile(info, io.BytesIO(note))
    return buf.getvalue()


def imagenette_tgz(imagenette: Path, top: str = "imagenette2-320", per_class: int = 4, classes: int = 3) -> bytes:
    """An Imagenette archive ``<top>/{train,val}/<wnid>/*.JPEG`` from the real Imagenette photographs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split in ("train", "val"):
            for wnid in sorted(p.name for p in (imagenette / split).iterdir())[:classes]:
                for f in sorted((imagenette / split / wnid).glob("*.JPEG"))[:per_class]:
                    tf.add(f, arcname=f"{top}/{split}/{wnid}/{f.name}")
    return buf.getvalue()


def edsr_benchmark_tar(benchmarks: Path, sets: tuple[str, ...] = ("Set5", "Set14", "BSD100")) -> bytes:
    """EDSR's ``benchmark.tar`` layout from the real benchmark images: ``benchmark/<set>/HR/*.png`` and, where a
    ``LRbicx4/`` copy exists, ``benchmark/<set>/LR_bicubic/X4/<name>x4.png`` (BSD100 is ``B100`` there)."""
    from huescale.data.benchmarks import SETS

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in sets:
            hr = benchmarks / name / "GTmod12" if (benchmarks / name / "GTmod12").is_dir() else benchmarks / name
            for f in sorted(f for f in hr.iterdir() if f.suffix.lower() in (".png", ".jpg")):
                tf.add(f, f"benchmark/{SETS[name]}/HR/{f.name}")
            for f in sorted((benchmarks / name / "LRbicx4").glob("*.png")):
                tf.add(f, f"benchmark/{SETS[name]}/LR_bicubic/X4/{f.stem}x4.png")
    return buf.getvalue()


def hf_parquet(photos: list[Path], out: Path) -> Path:
    """A parquet file with an ``image`` column (bytes embedded) and a ``label``, written with ``datasets``."""
    import datasets
    from datasets.table import embed_table_storage

    ds = datasets.Dataset.from_dict({"image": [str(p) for p in photos], "label": list(range(len(photos)))})
    ds = ds.cast_column("image", datasets.Image())
    ds = ds.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(out))
    return out
