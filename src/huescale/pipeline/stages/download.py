"""Stage ``download``: fetch the source (download, verify, extract, or check folders) and list its images."""

from __future__ import annotations

from huescale.atomic import write_json
from huescale.config import Config
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images, make_source, make_test_source, write_listing
from huescale.pipeline.stages import HOLDOUT_LISTINGS, LISTING


def run(cfg: Config) -> dict:
    """Write the image listing ``data/raw.json`` of ``data.source`` (and ``data.test_source``), and one listing
    ``data/holdout/<set>.json`` per held-out set of ``data.holdout``.

    Raises:
        FileNotFoundError: a source without image files (names the param).
        huescale.data.download.DownloadError: an unreachable or corrupt download.
    """
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
    write_json({"sets": cfg.data.holdout}, HOLDOUT_LISTINGS / "sets.json")  # the folder exists with no set too
    for name, folder in cfg.data.holdout.items():
        held = list_images(FolderSource([folder], param=f"data.holdout.{name}"), split="test")
        if not held:
            raise FileNotFoundError(f"data.holdout.{name}: {folder} holds no image files")
        write_listing(held, f"holdout:{name}", HOLDOUT_LISTINGS / f"{name}.json")
        out[f"holdout_{name}_listed"] = len(held)
    return out
