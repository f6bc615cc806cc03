"""Image sources behind one interface: fetch what is needed, then list the images.

A source lists :class:`ImageRef` records: a stable ``key`` (source name +
relative path; the split and the subset depend on it alone) and the local
``path``. ``list_images`` writes this listing for the ``download`` stage.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Protocol

from huescale.config import DataConfig
from huescale.data.download import download, extract, file_digest
from huescale.data.images import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class ImageRef:
    """One image of a source: stable key, absolute path, size in bytes, sha256 of the bytes."""

    key: str
    path: str
    size: int
    sha256: str


class Source(Protocol):
    """What every data source does: ``fetch`` (download/verify/extract) then ``iter_files``."""

    name: str

    def fetch(self) -> None:
        """Make the images available locally (download, verify, extract); idempotent."""

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Yield ``(stable key, local path)`` for every image file, in a deterministic order."""


def _walk_images(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                yield f"{prefix}/{p.relative_to(root).as_posix()}", p


class FolderSource:
    """Local directory trees of photographs (the offline source; tests and CI use ``../shared/data``)."""

    name = "folder"

    def __init__(self, folders: list[str | Path]):
        self.folders = [Path(f).expanduser() for f in folders]

    def fetch(self) -> None:
        """Check the folders exist.

        Raises:
            FileNotFoundError: naming the first missing folder and the param to fix.
        """
        for f in self.folders:
            if not f.is_dir():
                raise FileNotFoundError(f"data.folders: {f} is not a directory; fix the path in params.yaml")

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Image files under each folder; keys are ``<folder name>/<relative path>``."""
        for f in self.folders:
            yield from _walk_images(f.resolve(), f.resolve().name)


class ImagenetteSource:
    """fast.ai Imagenette (seed 000): official archive, md5-verified, resumable, extracted once."""

    name = "imagenette"

    def __init__(self, url: str, md5: str, cache_dir: str | Path):
        self.url, self.md5 = url, md5
        self.cache = Path(cache_dir).expanduser()
        self.archive = self.cache / "downloads" / Path(url).name
        stem = Path(url).name.removesuffix(".tgz").removesuffix(".tar.gz")
        self.root = self.cache / "extracted" / stem

    def fetch(self) -> None:
        """Download (resuming) and verify the archive, then extract it once into the cache."""
        marker = self.root / ".huescale-extracted"
        if marker.is_file() and marker.read_text().strip() == self.md5:
            return
        download(self.url, self.archive, md5=self.md5)
        extract(self.archive, self.root)
        marker.write_text(self.md5)

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Image files of the extracted archive; keys are ``imagenette/<split>/<wnid>/<file>``."""
        top = self.root / self.root.name  # the archive's own top folder, e.g. imagenette2-320/
        yield from _walk_images(top if top.is_dir() else self.root, "imagenette")


def make_source(cfg: DataConfig) -> Source:
    """The source named by ``data.source``."""
    if cfg.source == "folder":
        return FolderSource(cfg.folders)
    return ImagenetteSource(cfg.imagenette.url, cfg.imagenette.md5, cfg.cache_dir)


def list_images(source: Source) -> list[ImageRef]:
    """Fetch the source and list its image files with their size and sha256."""
    source.fetch()
    refs = []
    for key, path in source.iter_files():
        refs.append(ImageRef(key=key, path=str(path), size=path.stat().st_size, sha256=file_digest(path, "sha256")))
    return refs


def write_listing(refs: list[ImageRef], source: str, out: str | Path) -> None:
    """Write the listing JSON atomically (temp file + rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"source": source, "count": len(refs), "images": [asdict(r) for r in refs]}, indent=1))
    os.replace(tmp, out)


def read_listing(path: str | Path) -> list[ImageRef]:
    """Read a listing written by :func:`write_listing`.

    Raises:
        FileNotFoundError: naming the file and the stage that makes it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: image listing not found; run the download stage first (dvc repro download)")
    return [ImageRef(**r) for r in json.loads(p.read_text())["images"]]
