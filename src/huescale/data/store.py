"""The pair store: 8-bit sRGB training pairs in memory-mapped ``.npy`` shards, and its reader (:class:`PairStore`).

Built by :mod:`huescale.data.store_build` (one photograph -> its tier arrays: :mod:`huescale.data.tiers`; the
pool workers: :mod:`huescale.data.store_workers`; the shard files: :mod:`huescale.data.shards`).

Two tiers (docs/architecture.md), per split:
- ``256``: a 256 x 256 crop (short side resized down to 256, centre crop) and
  its x1/4 MATLAB-bicubic downscale (64 x 64): pairs for x4 super-resolution
  and for the 64 gray -> 256 colour pipelines. Targets are never upscaled.
- ``64``: every usable image at 64 x 64 (the 256 tier's downscales, plus
  smaller images centre-cropped and downscaled): colorization pairs.

Speed : a large JPEG is decoded at reduced DCT scale when its short
side stays >= 256 (Pillow ``draft``), and the photo -> 256 step (centre square
only) uses Pillow's antialiased bicubic (same a = -0.5 kernel, 8-bit fixed point); the 256 -> 64
LR step that the x4 tables depend on stays MATLAB bicubic
(:func:`huescale.resize.imresize`). Shards are streamed to disk row by row, so
memory does not grow with the number of images.

Lab pairs are computed exactly from the uint8 sRGB at load time (lossless, 4x
smaller than float Lab). Layout under the store folder::

    manifest.json                     images, splits, tiers, shard positions, exclusions
    {split}/gt64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 64: the colour image, colorization target)
    {split}/gt256_{k:04d}.npy         N x 256 x 256 x 3 uint8 (tier 256: the HR crop)
    {split}/lq64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 256: its x1/4 LR, aligned with gt256)

Array names follow BasicSR's lq (low quality: the input side) / gt (ground truth) with their side in pixels.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import numpy as np


class Tier(enum.IntEnum):
    """A tier of the pair store, named by its largest side in pixels (docs/architecture.md).

    ``T64``: every usable image as one 64 x 64 colour image (array ``gt64``: colorization pairs);
    ``T256``: images with a short side >= 256 as an HR 256 x 256 crop (``gt256``) and its LR x1/4
    MATLAB-bicubic downscale (``lq64``): x4 super-resolution and 64 gray -> 256 colour pairs.
    """

    T64 = 64
    T256 = 256

    @property
    def key(self) -> str:
        """The tier's key in the manifest (``"64"`` / ``"256"``)."""
        return str(int(self))


TIER_ARRAYS = {"64": ("gt64",), "256": ("lq64", "gt256")}  # manifest tier key -> its arrays, input side first
ARRAYS = ("gt64", "lq64", "gt256")


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
        """The shard files of array ``name`` (``gt64``, ``lq64``, ``gt256``) in ``split``, in order."""
        return [self.root / split / fn for fn in self.manifest["shards"][split][name]]

    def arrays(self, split: str, name: str) -> list[np.ndarray]:
        """The memory-mapped shards (``N_k x H x W x 3`` uint8) of ``name`` in ``split``."""
        return [np.load(p, mmap_mode="r") for p in self.shard_paths(split, name)]

    def count(self, split: str, tier: Tier | int | str) -> int:
        """Number of images of ``tier`` (:class:`Tier`, 64 or 256) in ``split``."""
        return self.manifest["counts"][split][str(int(tier))]

    def records(self, split: str, tier: Tier | int | str) -> list[dict]:
        """Manifest records of the images of ``tier`` (:class:`Tier`, 64 or 256) in ``split``, in store order."""
        key = str(int(tier))
        recs = [r for r in self.manifest["images"] if r["split"] == split and key in r["tiers"]]
        return sorted(recs, key=lambda r: tuple(r[key]))

    def images(self, split: str, name: str) -> np.ndarray:
        """All images of array ``name`` in ``split`` as one ``N x H x W x 3`` uint8 array (read into memory;
        ``0 x 1 x 1 x 3`` when empty)."""
        arrays = self.arrays(split, name)
        return np.concatenate([np.asarray(a) for a in arrays]) if arrays else np.zeros((0, 1, 1, 3), np.uint8)
