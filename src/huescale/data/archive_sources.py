"""The sources read from one official archive each, downloaded once into the cache and extracted member by
member: ``imagenette`` (fast.ai), ``coco`` (train2017/val2017 zips, only the sampled members extracted) and
``voc`` (the VOC2012 trainval tar, ``JPEGImages/``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from huescale.atomic import write_text
from huescale.data.archives import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_RATIO,
    archive_listing,
    check_expansion,
    extract_members,
)
from huescale.data.download import cache_path, download, file_digest, url_file_name
from huescale.data.source_base import is_image
from huescale.data.subset import sample_order
from huescale.locks import file_lock
from huescale.redact import redact

# Official archives (ENVIRONMENT.md table; fast.ai, cocodataset.org, PASCAL VOC).
IMAGENETTE = {
    "320": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz", "3df6f0d01a2c9592104656642f5e78a3"),
    "full": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz", "fe2fc210e6bb7c5664d602c3cd71e612"),
    "160": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz", "e793b78cc4c9e9a4ccc0c1155377a412"),
}


COCO_MD5 = {"train2017": "cced6f7f71b7629ddf16f17bbcfab6b2", "val2017": "442b8da7639aecaf257c1dceb8ba8c80"}


VOC_IMAGES = "VOCdevkit/VOC2012/JPEGImages/"


class ArchiveSource:
    """An image archive (zip or tar/tgz) downloaded once into the cache; only image members are extracted.

    Members are selected by ``member_prefix``; their keys are ``key_prefix`` +
    the member path after ``strip``. With ``limit``, only the first ``limit``
    keys in the seeded stable order of :func:`huescale.data.subset.sample_order`
    (the order ``prepare`` takes them in) are extracted, so a subset never
    extracts the whole archive and a larger subset extracts a superset.
    Unsafe archives (absolute, ``..`` or link members) are refused.
    """

    name = "archive"

    def __init__(self, url: str, md5: str | None, cache_dir: str | Path, member_prefix: str = "",
                 strip: str = "", key_prefix: str = "", limit: int | None = None, seed: int = 0,
                 progress: bool = True, sha256: str | None = None, size: int | None = None,
                 param: str = "its md5", max_extract_ratio: float = DEFAULT_MAX_EXTRACT_RATIO,
                 max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES):
        self.url, self.md5, self.sha256, self.size, self.param = url, md5 or None, sha256 or None, size, param
        self.cache = Path(cache_dir).expanduser()
        # keyed by URL (not by file name): two archives that share a name never stand in for each other
        self.archive = cache_path(self.cache, url, "downloads")
        name = self.archive.name
        self.root = self.archive.parent.parent.parent / "extracted" / self.archive.parent.name / re.sub(
            r"(\.tar\.gz|\.tgz|\.tar|\.zip)$", "", name)
        self.member_prefix, self.strip, self.key_prefix = member_prefix, strip, key_prefix
        self.limit, self.seed, self.progress = limit, seed, progress
        self.max_extract_ratio, self.max_extract_bytes = max_extract_ratio, max_extract_bytes
        self._files: list[tuple[str, Path]] = []

    def _listing(self) -> dict[str, int]:
        """Member names -> declared sizes, cached next to the archive (listing an 18 GB zip once is enough)."""
        index = self.archive.with_name(self.archive.name + ".members.json")
        stamp = f"{self.archive.stat().st_size}:{self.archive.stat().st_mtime_ns}"
        if index.is_file():
            try:
                cached = json.loads(index.read_text())
                if cached.get("stamp") == stamp and isinstance(cached.get("sizes"), dict):
                    return cached["sizes"]
            except (OSError, ValueError):
                pass  # a damaged index is rebuilt
        sizes = archive_listing(self.archive)
        write_text(json.dumps({"stamp": stamp, "sizes": sizes}), index)
        return sizes

    def _adopt_legacy_download(self) -> None:
        """Move an archive from the cache layout before issue 13 (``<cache>/downloads/<name>``, keyed by
        file name) to its URL-keyed place, if it has this source's checksum: no 18 GB re-download."""
        legacy = self.cache / "downloads" / self.archive.name
        if self.archive.exists() or not legacy.is_file() or not (self.md5 or self.sha256):
            return
        with file_lock(self.archive, f"download of {self.archive.name}"):
            if self.archive.exists() or not legacy.is_file():
                return
            if all(file_digest(legacy, a) == w.lower() for a, w in (("md5", self.md5), ("sha256", self.sha256)) if w):
                os.replace(legacy, self.archive)  # same folder tree, same filesystem

    def _members(self) -> list[str]:
        """Member names of the archive, in archive order (see :meth:`_listing`)."""
        return list(self._listing())

    def fetch(self) -> None:
        """Download (resuming, verified) and extract the selected image members, under a lock per cache entry.

        Raises:
            DownloadError: download failure, no checksum, checksum mismatch, unsafe archive, likely
                decompression bomb (``data.max_extract_ratio`` / ``data.max_extract_bytes``), disk full.
            FileNotFoundError: the archive has no images under ``member_prefix``.
        """
        self._adopt_legacy_download()
        download(self.url, self.archive, md5=self.md5, sha256=self.sha256, size=self.size, progress=self.progress,
                 param=self.param)
        sizes = self._listing()
        check_expansion(self.archive, sum(sizes.values()), self.max_extract_ratio, self.max_extract_bytes)
        by_key = {}
        for name in sizes:
            if name.startswith(self.member_prefix) and is_image(name) and not Path(name).name.startswith("."):
                by_key[self.key_prefix + name.removeprefix(self.strip)] = name
        if not by_key:
            raise FileNotFoundError(f"{self.archive}: no images under {self.member_prefix!r}; "
                                    f"is {redact(self.url)} the right archive? delete it to download again")
        keys = sample_order(list(by_key), self.seed)
        if self.limit is not None:
            keys = keys[: self.limit]
        chosen = {by_key[k]: self.root / by_key[k] for k in keys}
        with file_lock(self.root, f"extraction of {self.archive.name}"):
            extract_members(self.archive, self.root, chosen, progress=self.progress, max_ratio=self.max_extract_ratio,
                            max_bytes=self.max_extract_bytes)
        self._files = sorted((k, self.root / by_key[k]) for k in keys)

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """The extracted images selected by the last :meth:`fetch`, sorted by key."""
        yield from self._files


class ImagenetteSource(ArchiveSource):
    """fast.ai Imagenette (Frison et al. 2025): official archive, md5-verified, resumable.

    Keys: ``imagenette/<split>/<wnid>/<file>``.
    """

    name = "imagenette"

    def __init__(self, url: str, md5: str, cache_dir: str | Path, progress: bool = True, **kwargs):
        # the archive's own top folder, e.g. imagenette2-320
        top = re.sub(r"(\.tar\.gz|\.tgz)$", "", url_file_name(url))
        kwargs.setdefault("param", "data.imagenette.md5")
        super().__init__(url, md5, cache_dir, member_prefix=f"{top}/", strip=f"{top}/", key_prefix="imagenette/",
                         progress=progress, **kwargs)


class CocoSource:
    """MS-COCO 2017 image zips (Brescia et al., Singh et al.); keys ``coco/<train2017|val2017>/<file>``.

    With ``limit`` (a subset: ``data.n_images`` x (1 + ``data.fetch_margin``)),
    only that many members are extracted per archive, chosen by the stable hash
    order of their keys.
    """

    name = "coco"

    def __init__(self, archives: list[str], base_url: str, md5: dict[str, str], cache_dir: str | Path,
                 limit: int | None = None, seed: int = 0, progress: bool = True, **kwargs):
        self.parts = [ArchiveSource(f"{base_url.rstrip('/')}/{a}.zip", md5.get(a, COCO_MD5.get(a)), cache_dir,
                                    member_prefix=f"{a}/", key_prefix="coco/", limit=limit, seed=seed,
                                    progress=progress, param=f"data.coco.md5.{a}", **kwargs) for a in archives]

    def fetch(self) -> None:
        """Download each zip (resuming) and extract its sampled members."""
        for part in self.parts:
            part.fetch()

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """The extracted images of every archive, sorted by key."""
        for part in self.parts:
            yield from part.iter_files()


class VocSource(ArchiveSource):
    """PASCAL VOC 2012 trainval tar (Brescia et al.): ``VOCdevkit/VOC2012/JPEGImages/*``; keys ``voc/<file>``."""

    name = "voc"

    def __init__(self, url: str, md5: str, cache_dir: str | Path, progress: bool = True, **kwargs):
        kwargs.setdefault("param", "data.voc.md5")
        super().__init__(url, md5, cache_dir, member_prefix=VOC_IMAGES, strip=VOC_IMAGES, key_prefix="voc/",
                         progress=progress, **kwargs)
