"""Image sources behind one interface: fetch what is needed, then list the images.

A source lists :class:`ImageRef` records: a stable ``key`` (source name +
relative path; the split and the subset depend on it alone) and the local
``path``. ``list_images`` writes this listing for the ``download`` stage.

Sources : ``folder`` (local trees), ``imagenette`` (fast.ai archive,
variant 320 / full / 160), ``coco`` (train2017/val2017 zips: when a subset is
asked for, only the sampled members are extracted), ``voc`` (VOC2012 trainval
tar, ``JPEGImages/``) and ``hf`` (``datasets.load_dataset``, images written
once into the cache). Downloads and extracted files live in one cache
directory shared by all runs: ``data.cache_dir``, or ``$HUESCALE_CACHE``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from huescale.atomic import TMP_RE, atomic_open, clean_stale_in, write_text
from huescale.config import DataConfig
from huescale.data.archives import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_RATIO,
    archive_listing,
    check_expansion,
    extract_members,
)
from huescale.data.download import cache_path, download, file_digest, url_file_name
from huescale.data.images import IMAGE_EXTENSIONS
from huescale.data.subset import sample_order
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar
from huescale.redact import redact

# Official archives (ENVIRONMENT.md table; fast.ai, cocodataset.org, PASCAL VOC).
IMAGENETTE = {
    "320": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz", "3df6f0d01a2c9592104656642f5e78a3"),
    "full": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz", "fe2fc210e6bb7c5664d602c3cd71e612"),
    "160": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz", "e793b78cc4c9e9a4ccc0c1155377a412"),
}
COCO_MD5 = {"train2017": "cced6f7f71b7629ddf16f17bbcfab6b2", "val2017": "442b8da7639aecaf257c1dceb8ba8c80"}
VOC_IMAGES = "VOCdevkit/VOC2012/JPEGImages/"


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


def _walk_images(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
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
            yield from _walk_images(f.resolve(), f.resolve().name)


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


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
            if name.startswith(self.member_prefix) and _is_image(name) and not Path(name).name.startswith("."):
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


def _sniff_suffix(data: bytes, fallback: str) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    return fallback if fallback.lower() in IMAGE_EXTENSIONS else ".img"


class HfSource:
    """A Hugging Face data set with an image column; each image is written once into the cache as a file.

    ``datasets.load_dataset(name, config, split=split, streaming=streaming)``
    (``name`` may be ``parquet`` with ``data_files`` or ``imagefolder`` with
    ``data_dir`` for local data). Keys are ``hf/<name>/<split>/<row:08d>``; the
    original encoded bytes are stored (so bad images reach :func:`read_image`
    as they are). With ``limit``: a streamed set takes its first ``limit`` rows
    (reading no further); a map-style set takes the first ``limit`` row keys in
    the stable hash order of :func:`huescale.data.subset.sample_order`.

    Raises (from :meth:`fetch`):
        ConnectionError: a hub name that cannot be reached (offline, ``HF_HUB_OFFLINE=1``),
            with the local alternatives.
        KeyError: ``image_column`` is not a column of the data set.
    """

    name = "hf"

    def __init__(self, name: str, split: str, image_column: str, cache_dir: str | Path, config: str = "",
                 data_files: list[str] | None = None, data_dir: str = "", streaming: bool = False,
                 limit: int | None = None, seed: int = 0, progress: bool = True):
        self.ds_name, self.config, self.split, self.column = name, config or None, split, image_column
        self.data_files, self.data_dir, self.streaming = list(data_files or []), data_dir, streaming
        self.limit, self.seed, self.progress = limit, seed, progress
        self.cache = Path(cache_dir).expanduser()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name + (f"_{config}" if config else ""))
        if data_files or data_dir:  # local builders: the files identify the data set
            import hashlib

            ident = "|".join(sorted(str(Path(f).expanduser().resolve()) for f in self.data_files) + [data_dir])
            slug += "_" + hashlib.sha256(ident.encode()).hexdigest()[:10]
        self.slug = slug
        self.root = self.cache / "hf" / slug / re.sub(r"[^A-Za-z0-9._-]+", "_", split)
        self._files: list[tuple[str, Path]] = []

    def _load(self):
        import datasets  # lazy: ~2.4 s, only for the hf source

        kwargs = {"split": self.split, "streaming": self.streaming, "cache_dir": str(self.cache / "hf_datasets")}
        if self.data_files:
            kwargs["data_files"] = [str(Path(f).expanduser()) for f in self.data_files]
        if self.data_dir:
            kwargs["data_dir"] = str(Path(self.data_dir).expanduser())
        try:
            ds = datasets.load_dataset(self.ds_name, self.config, **kwargs)
        except ConnectionError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
            raise ConnectionError(
                f"data.hf.name={self.ds_name}: cannot reach the Hugging Face hub"
                f"{' (HF_HUB_OFFLINE=1 is set)' if offline else ''} ({redact(exc)}); use local data: "
                "data.hf.name=parquet with data.hf.data_files, or imagefolder with data.hf.data_dir, "
                "or data.source=folder") from None
        if self.column not in (ds.column_names or []):
            raise KeyError(f"data.hf.image_column={self.column!r} is not a column of {self.ds_name} "
                           f"(columns: {ds.column_names})")
        return ds.cast_column(self.column, datasets.Image(decode=False))

    def _write(self, key: str, value: dict, existing: dict[str, Path]) -> Path:
        """Write one image's encoded bytes under the cache once (temp file + rename); returns its path."""
        stem = self.root / key.rsplit("/", 1)[-1]
        if stem.name in existing:
            return existing[stem.name]
        data = value.get("bytes")
        if data is None and value.get("path"):
            data = Path(value["path"]).read_bytes()
        data = data or b""
        out = stem.with_suffix(_sniff_suffix(data, Path(value.get("path") or "").suffix))
        with atomic_open(out, "wb", clean=False) as f:  # stale temporaries: swept once in fetch
            f.write(data)
        return out

    def fetch(self) -> None:
        """Load the data set and write the selected rows' images into the cache (one process at a time)."""
        ds = self._load()
        prefix = f"hf/{self.slug}/{self.split}/"
        with file_lock(self.root, f"hf cache of {self.ds_name}"):
            self._fetch_rows(ds, prefix)

    def _fetch_rows(self, ds, prefix: str) -> None:
        clean_stale_in(self.root)
        have = ({p.stem: p for p in self.root.iterdir() if p.suffix != ".part" and not TMP_RE.match(p.name)}
                if self.root.is_dir() else {})
        files = []
        if self.streaming:
            rows = ds if self.limit is None else ds.take(self.limit)
            bar = progress_bar(rows, desc=f"hf {self.ds_name}", unit="img", disable=not self.progress)
            for i, row in enumerate(bar):
                key = f"{prefix}{i:08d}"
                files.append((key, self._write(key, row[self.column], have)))
        else:
            keys = sample_order([f"{prefix}{i:08d}" for i in range(len(ds))], self.seed)
            if self.limit is not None:
                keys = keys[: self.limit]
            col = ds.select_columns([self.column])
            for key in progress_bar(sorted(keys), desc=f"hf {self.ds_name}", unit="img", disable=not self.progress):
                files.append((key, self._write(key, col[int(key.rsplit("/", 1)[-1])][self.column], have)))
        self._files = sorted(files)

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """The cached image files of the selected rows, sorted by key."""
        yield from self._files


def make_source(cfg: DataConfig, seed: int = 0, progress: bool = True) -> Source:
    """The source named by ``data.source``, reading its sub-section of ``data`` and the cache directory.

    ``coco`` and ``hf`` fetch only ``n_images * (1 + fetch_margin)`` candidates
    (the subset ``prepare`` draws from, in the same seeded order).

    Raises:
        ValueError: an unknown source name.
    """
    cache = cache_root(cfg)
    limit = int(cfg.n_images * (1 + cfg.fetch_margin)) + 1
    bounds = {"max_extract_ratio": cfg.max_extract_ratio, "max_extract_bytes": cfg.max_extract_bytes}
    if cfg.source == "folder":
        return FolderSource(cfg.folders)
    if cfg.source == "imagenette":
        url, md5 = IMAGENETTE[cfg.imagenette.variant]
        return ImagenetteSource(cfg.imagenette.url or url, cfg.imagenette.md5 or (None if cfg.imagenette.url else md5),
                                cache, progress=progress, **bounds)
    if cfg.source == "coco":
        c = cfg.coco
        return CocoSource(c.archives, c.base_url, c.md5, cache, limit=limit, seed=seed, progress=progress, **bounds)
    if cfg.source == "voc":
        return VocSource(cfg.voc.url, cfg.voc.md5, cache, progress=progress, **bounds)
    if cfg.source == "hf":
        h = cfg.hf
        return HfSource(h.name, h.split, h.image_column, cache, config=h.config, data_files=h.data_files,
                        data_dir=h.data_dir, streaming=h.streaming, limit=limit, seed=seed, progress=progress)
    raise ValueError(f"data.source: unknown source {cfg.source!r}")


def make_test_source(cfg: DataConfig, seed: int = 0, progress: bool = True) -> Source | None:
    """The source of ``data.test_source`` (its images all go to the test split), or None when ``none``."""
    t = cfg.test_source
    if t.source == "none":
        return None
    n = t.n_images or 10**9
    sub = dataclasses.replace(cfg, source=t.source, folders=t.folders or cfg.folders, n_images=n,
                              fetch_margin=cfg.fetch_margin if t.n_images else 0.0)
    return make_source(sub, seed=seed, progress=progress)


def list_images(source: Source, split: str | None = None) -> list[ImageRef]:
    """Fetch the source and list its image files with their size and sha256 (``split``: a fixed split for all)."""
    source.fetch()
    refs = []
    for key, path in source.iter_files():
        refs.append(ImageRef(key=key, path=str(path), size=path.stat().st_size, sha256=file_digest(path, "sha256"),
                             split=split))
    return refs


def write_listing(refs: list[ImageRef], source: str, out: str | Path) -> None:
    """Write the listing JSON atomically and durably (process-private temp file, fsync, rename)."""
    write_text(json.dumps({"source": source, "count": len(refs), "images": [asdict(r) for r in refs]}, indent=1), out)


def read_listing(path: str | Path) -> list[ImageRef]:
    """Read a listing written by :func:`write_listing`.

    Raises:
        FileNotFoundError: naming the file and the stage that makes it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: image listing not found; run the download stage first (dvc repro download)")
    return [ImageRef(**r) for r in json.loads(p.read_text())["images"]]
