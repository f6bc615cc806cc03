"""What every image source is: the :class:`Source` interface, the :class:`ImageRef` record it lists, the cache
root all sources share, and the simplest source, local folders (:class:`FolderSource`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from huescale.config import DataConfig
from huescale.data.images import IMAGE_EXTENSIONS


def cache_root(cfg: DataConfig) -> Path:
    """The cache directory of downloads and extracted images: ``$HUESCALE_CACHE`` or ``data.cache_dir``."""
    return Path(os.environ.get("HUESCALE_CACHE") or cfg.cache_dir).expanduser()


@dataclass(frozen=True)
class ImageRef:
    """One image of a source: stable key, absolute path, size in bytes, sha256 of the bytes."""

    key: str
    path: str
    size: int
    sha256: str
    split: str | None = None  # a fixed split (images of data.test_source), else decided in prepare


class Source(Protocol):
    """What every data source does: ``fetch`` (download/verify/extract) then ``iter_files``."""

    name: str

    def fetch(self) -> None:
        """Make the images available locally (download, verify, extract); idempotent."""

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Yield ``(stable key, local path)`` for every image file, in a deterministic order."""


def walk_images(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                yield f"{prefix}/{p.relative_to(root).as_posix()}", p


class FolderSource:
    """Local directory trees of photographs (the offline source)."""

    name = "folder"

    def __init__(self, folders: list[str | Path], param: str = "data.folders"):
        self.folders = [Path(f).expanduser() for f in folders]
        self.param = param  # the params key that names the folders (for the error message)

    def fetch(self) -> None:
        """Check the folders exist.

        Raises:
            FileNotFoundError: naming the first missing folder and the param to fix.
        """
        for f in self.folders:
            if not f.is_dir():
                raise FileNotFoundError(f"{self.param}: {f} is not a directory; fix the path in params.yaml")

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """Image files under each folder; keys are ``<folder name>/<relative path>``."""
        for f in self.folders:
            yield from walk_images(f.resolve(), f.resolve().name)


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS
