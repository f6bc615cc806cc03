"""Stage ``download``: fetch the source (download, verify, extract, or check folders) and list its images."""

from __future__ import annotations

from huescale.config import Config
from huescale.stages import LISTING


def run(cfg: Config) -> dict:
    """Write the image listing ``data/raw.json`` of ``data.source`` (and ``data.test_source``).

    Raises:
        FileNotFoundError: a source without image files (names the param).
        huescale.data.download.DownloadError: an unreachable or corrupt download.
    """
    from huescale.data.sources import list_images, make_source, make_test_source, write_listing

    refs = list_images(make_source(cfg.data, seed=cfg.seed))
    if not refs:
        raise FileNotFoundError(f"data.source={cfg.data.source}: no image files found; check data.folders")
    test_source = make_test_source(cfg.data, seed=cfg.seed)
    test_refs = list_images(test_source, split="test") if test_source is not None else []
    if test_source is not None and not test_refs:
        raise FileNotFoundError(f"data.test_source={cfg.data.test_source.source}: no image files found")
    write_listing(refs + test_refs, cfg.data.source, LISTING)
    out = {"images_listed": len(refs), "bytes": sum(r.size for r in refs)}
    if test_refs:
        out["test_images_listed"] = len(test_refs)
    return out
