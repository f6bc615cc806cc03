"""The pair store: 8-bit sRGB training pairs in memory-mapped ``.npy`` shards.

Two tiers (DESIGN.md §3), per split:
- ``256``: a 256 x 256 crop (short side resized down to 256, centre crop) and
  its x1/4 MATLAB-bicubic downscale (64 x 64): pairs for x4 super-resolution
  and for the 64 gray -> 256 colour pipelines. Targets are never upscaled.
- ``64``: every usable image at 64 x 64 (the 256 tier's downscales, plus
  smaller images centre-cropped and downscaled): colorization pairs.

Lab pairs are computed exactly from the uint8 sRGB at load time (lossless, 4x
smaller than float Lab). Layout under the store folder::

    manifest.json                     images, splits, tiers, shard positions, exclusions
    {split}/lr64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 64)
    {split}/hr256_{k:04d}.npy         N x 256 x 256 x 3 uint8 (tier 256)
    {split}/lr256_{k:04d}.npy         N x 64 x 64 x 3 uint8   (tier 256, aligned with hr256)
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from huescale.config import DataConfig
from huescale.data.images import ImageError, is_grayscale, read_image
from huescale.data.sources import ImageRef
from huescale.data.subset import SPLITS, sample_order, split_of
from huescale.resize import imresize

TIER_ARRAYS = {"64": ("lr64",), "256": ("lr256", "hr256")}


class NotEnoughImagesError(RuntimeError):
    """Fewer usable images than ``data.min_images`` remained after exclusions."""


@dataclass
class Prepared:
    """One image turned into its tier arrays (uint8, H x W x 3)."""

    lr64: np.ndarray
    hr256: np.ndarray | None
    width: int
    height: int


def _center_square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top:top + s, left:left + s]


def process_image(path: str, cfg: DataConfig) -> Prepared:
    """Read one photograph and make its tier arrays.

    Raises:
        ImageError: unreadable (see :func:`read_image`), ``grayscale`` or ``too_small``.
    """
    rgb = read_image(path, cfg.max_pixels)
    h, w = rgb.shape[:2]
    if is_grayscale(rgb, cfg.gray_tolerance):
        raise ImageError(path, "grayscale", "grayscale (R~=G~=B): cannot be a colorization target")
    short, lr, hr = min(h, w), cfg.lr_size, cfg.hr_size
    hr_img = None
    if short >= hr:
        if short > hr:
            rgb = imresize(rgb, (round(h * hr / short), round(w * hr / short)))
        hr_img = _center_square(rgb)[:hr, :hr]
        lr_img = imresize(hr_img, (lr, lr))
    elif short >= lr or cfg.small_images == "upscale":
        lr_img = imresize(_center_square(rgb), (lr, lr))
    else:
        raise ImageError(path, "too_small", f"{w}x{h} is smaller than {lr} px on the short side; "
                         "set data.small_images=upscale to use it")
    return Prepared(lr64=lr_img, hr256=hr_img, width=w, height=h)


def _work(args: tuple[str, DataConfig]) -> Prepared | ImageError:
    try:
        return process_image(*args)
    except ImageError as exc:
        return exc


class _ShardWriter:
    """Buffers arrays and writes fixed-size ``.npy`` shards (bounded memory)."""

    def __init__(self, folder: Path, name: str, shard_size: int):
        self.folder, self.name, self.shard_size = folder, name, shard_size
        self.buf: list[np.ndarray] = []
        self.count = 0
        self.shards: list[str] = []

    def add(self, a: np.ndarray) -> tuple[int, int]:
        """Queue one array; returns its (shard index, row in shard)."""
        pos = (len(self.shards), len(self.buf))
        self.buf.append(a)
        self.count += 1
        if len(self.buf) == self.shard_size:
            self.flush()
        return pos

    def flush(self) -> None:
        """Write the buffered arrays as the next shard (no-op when empty)."""
        if not self.buf:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fn = f"{self.name}_{len(self.shards):04d}.npy"
        np.save(self.folder / fn, np.stack(self.buf))
        self.shards.append(fn)
        self.buf = []


def build_pair_store(refs: list[ImageRef], cfg: DataConfig, out_dir: str | Path, seed: int = 0,
                     progress: bool = True) -> dict:
    """Make the pair store from a listing: subset, split, decode, crop, resize, shard.

    Takes images in a seeded stable order until ``cfg.n_images`` usable ones
    are stored; unusable ones are recorded with their reason. The store is
    built in ``<out_dir>.tmp`` and renamed into place when complete.

    Args:
        refs: the source listing.
        cfg: the ``data`` section.
        out_dir: the store folder (replaced atomically).
        seed: subset seed.
        progress: show a tqdm bar.

    Returns:
        The manifest dict (also written to ``<out_dir>/manifest.json``).

    Raises:
        NotEnoughImagesError: fewer than ``cfg.min_images`` usable images.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    by_key = {r.key: r for r in refs}
    order = [by_key[k] for k in sample_order(list(by_key), seed)]
    writers = {(s, n): _ShardWriter(tmp / s, n, cfg.shard_size) for s in SPLITS for n in ("lr64", "lr256", "hr256")}
    images, excluded = [], []
    reasons: Counter[str] = Counter()
    # forkserver: never fork a process whose thread pools (OpenMP, MLflow) are running
    ctx = get_context("spawn" if os.name == "nt" else "forkserver")
    workers = max(1, cfg.workers)
    jobs = ((r.path, cfg) for r in order)
    with ctx.Pool(workers) if workers > 1 else _InlinePool() as pool, tqdm(
        total=min(cfg.n_images, len(order)), desc="prepare", unit="img", disable=not progress
    ) as bar:
        for ref, res in zip(order, pool.imap(_work, jobs, chunksize=8)):
            if isinstance(res, ImageError):
                excluded.append({"key": ref.key, "path": ref.path, "reason": res.reason, "message": str(res)})
                reasons[res.reason] += 1
                continue
            split = split_of(ref.key, cfg.splits)
            rec = {"key": ref.key, "path": ref.path, "sha256": ref.sha256, "split": split,
                   "width": res.width, "height": res.height, "tiers": ["64"]}
            rec["64"] = writers[(split, "lr64")].add(res.lr64)
            if res.hr256 is not None:
                rec["tiers"].append("256")
                rec["256"] = writers[(split, "hr256")].add(res.hr256)
                writers[(split, "lr256")].add(res.lr64)
            images.append(rec)
            bar.update(1)
            if len(images) >= cfg.n_images:
                if workers > 1:
                    pool.terminate()
                break
    for w in writers.values():
        w.flush()
    if len(images) < cfg.min_images:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NotEnoughImagesError(
            f"only {len(images)} usable images (need data.min_images={cfg.min_images}); excluded: "
            f"{dict(reasons)}; add photographs to the source or lower data.min_images"
        )
    counts = {s: {t: writers[(s, TIER_ARRAYS[t][-1])].count for t in TIER_ARRAYS} for s in SPLITS}
    manifest = {
        "hr_size": cfg.hr_size, "lr_size": cfg.lr_size, "scale": cfg.scale,
        "candidates_seen": len(images) + len(excluded), "usable": len(images),
        "excluded": dict(sorted(reasons.items())), "counts": counts,
        "shards": {s: {n: writers[(s, n)].shards for n in ("lr64", "lr256", "hr256")} for s in SPLITS},
        "images": images, "excluded_images": excluded,
    }
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return manifest


class _InlinePool:
    """A one-process stand-in for ``multiprocessing.Pool`` (``data.workers: 1``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn, it, chunksize=1) -> Iterator:
        """Lazy ``map`` in this process."""
        return map(fn, it)


class PairStore:
    """Read access to a pair store: memory-mapped arrays of one split and tier.

    Raises:
        FileNotFoundError: if the store or its manifest is missing (names the stage to run).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        mf = self.root / "manifest.json"
        if not mf.is_file():
            raise FileNotFoundError(f"{mf}: pair store not found; run the prepare stage first (dvc repro prepare)")
        self.manifest = json.loads(mf.read_text())

    def shard_paths(self, split: str, name: str) -> list[Path]:
        """The shard files of array ``name`` (``lr64``, ``lr256``, ``hr256``) in ``split``, in order."""
        return [self.root / split / fn for fn in self.manifest["shards"][split][name]]

    def arrays(self, split: str, name: str) -> list[np.ndarray]:
        """The memory-mapped shards (``N_k x H x W x 3`` uint8) of ``name`` in ``split``."""
        return [np.load(p, mmap_mode="r") for p in self.shard_paths(split, name)]

    def count(self, split: str, tier: str) -> int:
        """Number of images of ``tier`` (``"64"`` or ``"256"``) in ``split``."""
        return self.manifest["counts"][split][tier]

    def records(self, split: str, tier: str) -> list[dict]:
        """Manifest records of the images of ``tier`` in ``split``, in store order."""
        recs = [r for r in self.manifest["images"] if r["split"] == split and tier in r["tiers"]]
        return sorted(recs, key=lambda r: tuple(r[tier]))
