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

This module makes a source from the params and writes and reads the listing; the sources themselves are
:mod:`huescale.data.source_base` (the interface, ``folder``), :mod:`huescale.data.archive_sources`
(``imagenette``, ``coco``, ``voc``) and :mod:`huescale.data.hf_source` (``hf``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

from huescale.atomic import write_text
from huescale.config import DataConfig
from huescale.data.archive_sources import IMAGENETTE, CocoSource, ImagenetteSource, VocSource
from huescale.data.download import file_digest
from huescale.data.hf_source import HfSource
from huescale.data.source_base import FolderSource, ImageRef, Source, cache_root


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
