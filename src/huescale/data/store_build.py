"""Building the pair store (:mod:`huescale.data.store`): subset, split, decode, crop, resize, shard, manifest.

One process at a time per store (a file lock), built in a private temporary folder that replaces the old
store only when complete. The images are decoded by the pool of :mod:`huescale.data.store_workers`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from huescale.atomic import atomic_open, clean_stale_tmp, commit, fsync_dir, tmp_path
from huescale.config import DataConfig
from huescale.data.images import ImageError
from huescale.data.shards import ShardWriter
from huescale.data.store import ARRAYS, TIER_ARRAYS
from huescale.data.store_workers import Slots, results_in_order, start_pool
from huescale.data.subset import SPLITS, sample_order, split_of
from huescale.data.tiers import Prepared
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar

if TYPE_CHECKING:  # the listing's type only
    from huescale.data.source_base import ImageRef


class NotEnoughImagesError(RuntimeError):
    """Fewer usable images than ``data.min_images`` remained after exclusions."""



def split_for(ref: ImageRef, cfg: DataConfig) -> str:
    """The split of one listed image: its fixed split (``data.test_source``), else the longest matching
    ``data.split_map`` key prefix, else the stable hash split of its key by ``data.splits``."""
    if ref.split:
        return ref.split
    best = max((p for p in cfg.split_map if ref.key == p or ref.key.startswith(p.rstrip("/") + "/")),
               key=len, default=None)
    return cfg.split_map[best] if best is not None else split_of(ref.key, cfg.splits)


def build_pair_store(refs: list[ImageRef], cfg: DataConfig, out_dir: str | Path, seed: int = 0,
                     progress: bool = True) -> dict:
    """Make the pair store from a listing: subset, split, decode, crop, resize, shard.

    Takes images in a seeded stable order until ``cfg.n_images`` usable ones
    are stored; unusable ones are recorded with their reason. One process at a
    time per store: a lock next to it (``.<name>.lock``) makes a concurrent run
    wait (it logs whom it waits for). The store is built in a process-private
    temporary folder (``.<name>.<pid>.tmp``, fsynced) that replaces ``out_dir``
    only when complete, manifest last; temporaries of killed runs are removed.

    Args:
        refs: the source listing.
        cfg: the ``data`` section.
        out_dir: the store folder (replaced atomically).
        seed: subset seed.
        progress: show a tqdm bar.

    Returns:
        The manifest dict (also written to ``<out_dir>/manifest.json``).

    Raises:
        NotEnoughImagesError: fewer than ``cfg.min_images`` usable images (the old store is kept).
        ValueError: a key listed twice.
        huescale.locks.LockTimeout: another run held the store longer than ``HUESCALE_LOCK_TIMEOUT`` seconds.
    """
    out_dir = Path(out_dir)
    by_key: dict[str, ImageRef] = {}
    for r in refs:
        if r.key in by_key:
            raise ValueError(f"image key {r.key!r} is listed twice (two sources or folders with the same name); "
                             "rename one folder or drop one source")
        by_key[r.key] = r
    with file_lock(out_dir, f"pair store {out_dir}"):
        clean_stale_tmp(out_dir)
        tmp = tmp_path(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            manifest = _build(by_key, cfg, tmp, seed, progress)
            with atomic_open(tmp / "manifest.json", "w") as f:
                _dump_manifest(manifest, f)
            for d in [tmp, *(tmp / s for s in SPLITS)]:
                fsync_dir(d)
            old = tmp_path(out_dir, ".old")
            if out_dir.exists():
                os.replace(out_dir, old)
            commit(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return manifest


def _dump_manifest(manifest: dict, f) -> None:
    """Write the manifest as JSON with one image record per line: readable and diffable, and written
    by the C encoder (``json.dump`` with ``indent`` runs the pure-Python one: ~10x slower on 10k records).
    Streamed: no 10k-record string in memory."""
    f.write("{\n")
    items = list(manifest.items())
    for n, (key, value) in enumerate(items):
        f.write(f" {json.dumps(key)}: ")
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            f.write("[\n")
            for i, rec in enumerate(value):
                f.write("  " + json.dumps(rec) + (",\n" if i < len(value) - 1 else "\n"))
            f.write(" ]")
        else:
            f.write(json.dumps(value))
        f.write(",\n" if n < len(items) - 1 else "\n")
    f.write("}\n")


@dataclass
class _Tally:
    """What a build has stored and excluded so far: the manifest's image records and counters."""

    images: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    converted: Counter[str] = field(default_factory=Counter)


def _build(by_key: dict[str, ImageRef], cfg: DataConfig, tmp: Path, seed: int, progress: bool) -> dict:
    """The work of :func:`build_pair_store`, writing shards into ``tmp``; returns the manifest."""

    ordered = [by_key[k] for k in sample_order(list(by_key), seed)]
    # pools: the main source (n_images usable), then images of a fixed split (data.test_source)
    pools = [([r for r in ordered if not r.split], cfg.n_images),
             ([r for r in ordered if r.split], cfg.test_source.n_images or len(ordered))]
    writers = {(s, n): ShardWriter(tmp / s, n, cfg.shard_size) for s in SPLITS for n in ARRAYS}
    tally = _Tally()
    # forkserver: never fork a process whose thread pools (OpenMP, MLflow) are running
    ctx = get_context("spawn" if os.name == "nt" else "forkserver")
    workers = max(1, cfg.workers)
    total = sum(min(n, len(p)) for p, n in pools)
    pool = slots = None
    chunk = 8
    try:
        with progress_bar(total=total, desc="prepare", unit="img", disable=not progress) as bar:
            for pool_refs, target in pools:
                if not pool_refs:
                    continue
                if pool is None and workers > 1:
                    slots = Slots.create(4 * workers * chunk, cfg, tmp.parent)
                    pool = start_pool(ctx, workers, cfg, slots)  # one pool for both sources
                _take(pool_refs, target, pool, slots, cfg, workers, chunk, writers, tally, bar)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if slots is not None:
            slots.close(remove=True)
        for w in writers.values():
            w.flush()
    if len(tally.images) < cfg.min_images:
        raise NotEnoughImagesError(
            f"only {len(tally.images)} usable images (need data.min_images={cfg.min_images}); excluded: "
            f"{dict(tally.reasons)}; add photographs to the source or lower data.min_images"
        )
    return _manifest(cfg, writers, tally)


def _take(refs: list[ImageRef], target: int, pool, slots: Slots | None, cfg: DataConfig, workers: int, chunk: int,
          writers: dict[tuple[str, str], ShardWriter], tally: _Tally, bar) -> None:
    """Store images of ``refs`` in order until ``target`` usable ones are stored (or the list ends)."""
    taken = 0
    for ref, res in zip(refs, results_in_order(pool, [r.path for r in refs], cfg, workers,
                                               lambda: target - taken, chunk, slots)):  # noqa: B023 (read while this loop runs)
        if not _store_one(ref, res, cfg, writers, tally):
            continue
        bar.update(1)
        taken += 1
        if taken >= target:
            break


def _store_one(ref: ImageRef, res: Prepared | ImageError, cfg: DataConfig,
               writers: dict[tuple[str, str], ShardWriter], tally: _Tally) -> bool:
    """Write one image's arrays into its split's shards and record it (True), or record its exclusion (False)."""
    if isinstance(res, ImageError):
        tally.excluded.append({"key": ref.key, "path": ref.path, "reason": res.reason,
                               "message": str(res)})
        tally.reasons[res.reason] += 1
        return False
    split = split_for(ref, cfg)
    rec: dict = {"key": ref.key, "path": ref.path, "sha256": ref.sha256, "split": split,
                 "width": res.width, "height": res.height, "tiers": ["64"]}
    if res.converted:
        rec["converted"] = list(res.converted)
        tally.converted.update(res.converted)
    rec["64"] = writers[(split, "gt64")].add(res.lr64)
    if res.hr256 is not None:
        rec["tiers"].append("256")
        rec["256"] = writers[(split, "gt256")].add(res.hr256)
        writers[(split, "lq64")].add(res.lr64)
    tally.images.append(rec)
    return True


def _manifest(cfg: DataConfig, writers: dict[tuple[str, str], ShardWriter], tally: _Tally) -> dict:
    """The manifest of a finished build (before ``manifest.json`` is written)."""
    images, excluded = tally.images, tally.excluded
    counts = {s: {t: writers[(s, TIER_ARRAYS[t][-1])].count for t in TIER_ARRAYS} for s in SPLITS}
    return {
        "hr_size": cfg.hr_size, "lr_size": cfg.lr_size, "scale": cfg.scale,
        "candidates_seen": len(images) + len(excluded), "usable": len(images),
        "excluded": dict(sorted(tally.reasons.items())), "converted": dict(sorted(tally.converted.items())),
        "counts": counts,
        "shards": {s: {n: writers[(s, n)].shards for n in ARRAYS} for s in SPLITS},
        "images": images, "excluded_images": excluded,
    }
