"""The test suite's real photographs as a data source: one tar, pinned by SHA-256, fetched once, extracted safely.

The tests read real photographs (ImageNet samples, BSDS500, COCO's first 128 train2017 images, a few
Imagenette classes, the Set5/Set14/BSD100 benchmark images). A clone that has no local copy of them fetches
them here, as it fetches a training set: one uncompressed tar, :data:`BUNDLE_NAME`, downloaded with the
resumable, verified :func:`huescale.data.download.download` into the cache and extracted with the bounded,
link-refusing :func:`huescale.data.archives.extract`. ``HUESCALE_TEST_PHOTOS_URL`` overrides the URL (a
mirror, or the tests' loopback server); the checksum stays.

The bundle is reproducible: :func:`build` writes the members of :func:`select` in sorted order with
normalised headers (mtime 0, owner 0, mode 0644) and no compression (the JPEG/PNG files do not shrink), so
building it again from the same photographs gives the same bytes and the same :data:`BUNDLE_SHA256`
(``scripts/make_test_photos.py`` builds it for publishing as a release asset). The pin is that of the bundle
built from the reference copy the project was developed with; a test rebuilds it from a local copy and checks
the pin.

Layout of the extracted bundle (what ``HUESCALE_TEST_DATA`` may also point at)::

    imagenet_sample/*.JPEG   bsds500/{train,test}/*.jpg   coco128/train2017/*.jpg
    imagenette/{train,val}/<wnid>/*.JPEG  (first 3 classes, first 8 photographs each)
    benchmarks/{Set5,Set14}/{GTmod12,LRbicx4}/*.png   benchmarks/BSD100/*.jpg
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from huescale.atomic import write_bytes
from huescale.data.archives import fetch_extracted

BUNDLE_NAME = "huescale-test-photos-v1.tar"
BUNDLE_URL = f"https://github.com/huescale/huescale/releases/download/test-photos-v1/{BUNDLE_NAME}"
BUNDLE_SHA256 = "f10a3dcd3cd9cca8f9db9d9724c60edbd106f6c1baadd111ca180e25e2a1ef6d"
# folder -> copied whole; imagenette: the first IMAGENETTE_CLASSES classes x IMAGENETTE_PER_CLASS per split
WHOLE = ("imagenet_sample", "bsds500", "coco128", "benchmarks")
IMAGENETTE_CLASSES, IMAGENETTE_PER_CLASS = 3, 8
EXTENSIONS = {".jpg", ".jpeg", ".png"}
MARKER = "imagenet_sample"  # a folder every copy of the test photographs has


def bundle_url() -> str:
    """The bundle's URL: ``HUESCALE_TEST_PHOTOS_URL`` if set, else :data:`BUNDLE_URL`."""
    return os.environ.get("HUESCALE_TEST_PHOTOS_URL") or BUNDLE_URL


def is_photo_root(folder: str | Path) -> bool:
    """Whether ``folder`` holds the test photographs' layout (its ``imagenet_sample/`` at least)."""
    return (Path(folder) / MARKER).is_dir()


def select(root: str | Path) -> list[tuple[Path, str]]:
    """The bundle's members from a local copy of the photographs, sorted by archive name.

    Args:
        root: a folder with the layout of the module docstring (e.g. a data directory of real photographs).

    Returns:
        ``[(file, archive name)]``: every image file of :data:`WHOLE`'s folders, plus the first
        :data:`IMAGENETTE_CLASSES` class folders of ``imagenette/train`` and ``imagenette/val`` with their first
        :data:`IMAGENETTE_PER_CLASS` photographs (sorted by name).

    Raises:
        FileNotFoundError: ``root`` lacks one of the folders.
    """
    root = Path(root)
    out: list[tuple[Path, str]] = []
    for top in WHOLE:
        if not (root / top).is_dir():
            raise FileNotFoundError(f"{root / top}: not a folder; the test photographs need {', '.join(WHOLE)} "
                                    "and imagenette/{train,val}")
        out += [(f, f.relative_to(root).as_posix()) for f in (root / top).rglob("*")
                if f.is_file() and f.suffix.lower() in EXTENSIONS]
    for split in ("train", "val"):
        base = root / "imagenette" / split
        if not base.is_dir():
            raise FileNotFoundError(f"{base}: not a folder")
        for wnid in sorted(p.name for p in base.iterdir() if p.is_dir())[:IMAGENETTE_CLASSES]:
            files = sorted(f for f in (base / wnid).iterdir() if f.suffix.lower() in EXTENSIONS)
            out += [(f, f.relative_to(root).as_posix()) for f in files[:IMAGENETTE_PER_CLASS]]
    return sorted(out, key=lambda m: m[1])


def build(root: str | Path, out: str | Path) -> str:
    """Write the bundle of :func:`select` to ``out`` (atomically) and return its SHA-256.

    The same photographs give the same bytes: sorted members, headers with mtime 0, uid/gid 0, no owner
    names, mode 0644, POSIX ustar format, no compression.

    Raises:
        FileNotFoundError: as :func:`select`.
        FileExistsError: ``out`` exists (never overwritten; delete it first).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; delete it (or name another file) to build the bundle again")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for f, name in select(root):
            data = f.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tf.addfile(info, io.BytesIO(data))
    payload = buf.getvalue()
    write_bytes(payload, out)
    return hashlib.sha256(payload).hexdigest()


def fetch(cache_dir: str | Path, url: str | None = None, sha256: str = BUNDLE_SHA256,
          progress: bool = True) -> Path:
    """Download (once, SHA-256-verified) and extract (once) the bundle; returns the extracted root.

    Args:
        cache_dir: the download cache (``data.cache_dir``, ``HUESCALE_CACHE``); the tar and its extraction live
            under it, keyed by the URL.
        url, sha256: another copy of the bundle (default :func:`bundle_url`, :data:`BUNDLE_SHA256`).

    Raises:
        DownloadError: unreachable host (the message says how to point the tests at a local copy), checksum
            mismatch (the file is deleted), or an unsafe archive.
    """
    return fetch_extracted(url or bundle_url(), cache_dir, MARKER, sha256=sha256, param="HUESCALE_TEST_PHOTOS_URL",
                           offline_hint="Without internet, set HUESCALE_TEST_DATA to a local copy of the test "
                                        "photographs (imagenet_sample/, bsds500/, coco128/, imagenette/, benchmarks/)",
                           progress=progress)


def locate(explicit: str | Path | None, candidates: list[Path], cache_dir: str | Path, url: str | None = None,
           sha256: str = BUNDLE_SHA256, progress: bool = True) -> Path:
    """The folder of test photographs: ``explicit`` if given, else the first local candidate, else fetched.

    Nothing is downloaded when ``explicit`` is given or a candidate holds the photographs.

    Args:
        explicit: a folder the user named (``HUESCALE_TEST_DATA``); returned as is, even if it lacks the
            layout (the tests then say what is missing).
        candidates: local copies to try in order (the test suite passes a data folder beside the clone).

    Raises:
        DownloadError: as :func:`fetch`, when nothing local was found.
    """
    if explicit:
        return Path(explicit).expanduser()
    for folder in candidates:
        if is_photo_root(folder):
            return folder
    return fetch(cache_dir, url, sha256, progress)
