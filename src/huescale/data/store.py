"""The pair store: 8-bit sRGB training pairs in memory-mapped ``.npy`` shards.

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
    {split}/lr64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 64)
    {split}/hr256_{k:04d}.npy         N x 256 x 256 x 3 uint8 (tier 256)
    {split}/lr256_{k:04d}.npy         N x 64 x 64 x 3 uint8   (tier 256, aligned with hr256)
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from huescale.config import DataConfig
from huescale.data.images import ImageError, is_grayscale, open_rgb
from huescale.data.sources import ImageRef
from huescale.data.subset import SPLITS, sample_order, split_of
from huescale.progress import bar as progress_bar
from huescale.resize import imresize, resize_matrix

TIER_ARRAYS = {"64": ("lr64",), "256": ("lr256", "hr256")}


class NotEnoughImagesError(RuntimeError):
    """Fewer usable images than ``data.min_images`` remained after exclusions."""


@dataclass
class Prepared:
    """One image turned into its tier arrays (uint8, H x W x 3), its full size and the conversions applied."""

    lr64: np.ndarray
    hr256: np.ndarray | None
    width: int
    height: int
    converted: tuple[str, ...] = ()


def _center_square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top:top + s, left:left + s]


@lru_cache(maxsize=64)
def _taps(in_length: int, out_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero taps of :func:`huescale.resize.resize_matrix`: ``(index, weight)``, each ``out x k``."""
    mat = resize_matrix(in_length, out_length)
    k = int((mat != 0).sum(axis=1).max())
    idx = np.zeros((out_length, k), dtype=np.intp)
    w = np.zeros((out_length, k), dtype=np.float64)
    for o in range(out_length):
        nz = np.flatnonzero(mat[o])
        idx[o, : len(nz)], w[o, : len(nz)] = nz, mat[o, nz]
    return idx, w


def matlab_downscale(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB bicubic ``imresize`` of an ``H x W x 3`` uint8 image, computed with its sparse taps.

    The same weights as :func:`huescale.resize.imresize` (float64, MATLAB's
    antialiased a = -0.5 kernel, symmetric borders) applied as a gather +
    weighted sum instead of dense matrices: ~10x fewer operations for 256 -> 64.

    Returns:
        ``size[0] x size[1] x 3`` uint8, rounded and clipped like ``imresize``.
    """
    (hi, hw), (wi, ww) = _taps(a.shape[0], size[0]), _taps(a.shape[1], size[1])
    oh, k = size[0], hi.shape[1]
    x = np.matmul(hw[:, None, :], a[hi].reshape(oh, k, -1).astype(np.float64))[:, 0]  # oh x (W*C)
    x = x.reshape(oh, a.shape[1], -1)[:, wi]  # oh x ow x k x C
    x = np.matmul(ww[None, :, None, :], x)[:, :, 0]  # oh x ow x C
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def process_image(path: str, cfg: DataConfig) -> Prepared:
    """Read one photograph and make its tier arrays.

    Short side >= ``hr_size``: the centre square is resized (Pillow antialiased
    bicubic, after a JPEG draft decode) to ``hr_size`` square (tier 256), then
    MATLAB-bicubic downscaled by the scale factor (tier 64); the gray test
    looks at that square. Smaller images: centre square, MATLAB bicubic to ``lr_size``.

    Raises:
        ImageError: unreadable (see :func:`huescale.data.images.open_rgb`), ``grayscale`` or ``too_small``.
    """
    notes: list[str] = []
    im, (w, h) = open_rgb(path, cfg.max_pixels, notes, draft_short_side=cfg.hr_size)
    short, lr, hr = min(h, w), cfg.lr_size, cfg.hr_size
    if short >= hr:  # centre square -> hr x hr in one Pillow pass (only the pixels kept are resampled)
        cw, ch = im.size
        side = min(cw, ch)
        if side == hr:  # already the size: integer centre crop, no resampling
            left, top = (cw - side) // 2, (ch - side) // 2
            im = im.crop((left, top, left + side, top + side))
        else:
            box = ((cw - side) / 2, (ch - side) / 2, (cw + side) / 2, (ch + side) / 2)
            im = im.resize((hr, hr), Image.Resampling.BICUBIC, box=box)
    rgb = np.asarray(im)
    if is_grayscale(rgb, cfg.gray_tolerance):
        raise ImageError(path, "grayscale", "grayscale (R~=G~=B): cannot be a colorization target")
    hr_img = None
    if short >= hr:
        hr_img = rgb if rgb.flags.c_contiguous else np.ascontiguousarray(rgb)
        lr_img = matlab_downscale(hr_img, (lr, lr))
    elif short >= lr or cfg.small_images == "upscale":
        lr_img = imresize(_center_square(rgb), (lr, lr))
        if short < lr:
            notes.append("upscaled")
    else:
        raise ImageError(path, "too_small", f"{w}x{h} is smaller than {lr} px on the short side; "
                         "set data.small_images=upscale to use it")
    return Prepared(lr64=lr_img, hr256=hr_img, width=w, height=h, converted=tuple(notes))


def _work(path: str, cfg: DataConfig) -> Prepared | ImageError:
    try:
        return process_image(path, cfg)
    except ImageError as exc:
        return exc


_WORKER_CFG: DataConfig | None = None  # set once per worker process (not pickled with every image)


def _init_worker(cfg: DataConfig) -> None:
    global _WORKER_CFG
    _WORKER_CFG = cfg


def _work_chunk(paths: list[str]) -> list[Prepared | ImageError]:
    assert _WORKER_CFG is not None, "_init_worker sets the config first"
    return [_work(p, _WORKER_CFG) for p in paths]


def _results(pool, paths: list[str], cfg: DataConfig, workers: int, chunk: int = 8) -> Iterator:
    """Results of :func:`process_image` in input order, with at most ``4 x workers`` chunks in flight.

    Unlike ``Pool.imap`` (whose result queue is unbounded), a slow consumer
    never makes finished images pile up in memory.
    """
    if pool is None:
        for p in paths:
            yield _work(p, cfg)
        return
    pending: deque = deque()
    for i in range(0, len(paths), chunk):
        pending.append(pool.apply_async(_work_chunk, (paths[i:i + chunk],)))
        if len(pending) >= 4 * workers:
            yield from pending.popleft().get()
    while pending:
        yield from pending.popleft().get()


class _ShardWriter:
    """Streams arrays into fixed-size ``.npy`` shards, row by row (memory does not grow with the data).

    The ``.npy`` header is written for a full shard and rewritten in place with
    the real row count when a shard is closed short (NumPy pads headers so the
    first dimension can grow; checked).
    """

    def __init__(self, folder: Path, name: str, shard_size: int):
        self.folder, self.name, self.shard_size = folder, name, shard_size
        self.count = 0
        self.shards: list[str] = []
        self._file: BinaryIO | None = None
        self._rows = 0
        self._header: dict | None = None

    @staticmethod
    def _header_bytes(header: dict, rows: int) -> bytes:
        import io

        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {**header, "shape": (rows, *header["shape"][1:])})
        return buf.getvalue()

    def add(self, a: np.ndarray) -> tuple[int, int]:
        """Write one array; returns its (shard index, row in shard)."""
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._header = {"descr": np.lib.format.dtype_to_descr(a.dtype), "fortran_order": False,
                            "shape": (self.shard_size, *a.shape)}
            self._file = open(self.folder / f"{self.name}_{len(self.shards):04d}.npy", "wb")
            self._file.write(self._header_bytes(self._header, self.shard_size))
        pos = (len(self.shards), self._rows)
        self._file.write(np.ascontiguousarray(a).data)
        self._rows += 1
        self.count += 1
        if self._rows == self.shard_size:
            self.flush()
        return pos

    def flush(self) -> None:
        """Close the current shard, fixing its header's row count when short (no-op when none is open)."""
        if self._file is None:
            return
        if self._rows != self.shard_size:
            assert self._header is not None, "set with the file"
            full = self._header_bytes(self._header, self.shard_size)
            short = self._header_bytes(self._header, self._rows)
            if len(short) != len(full):  # cannot happen with NumPy's padded headers; never write a bad file
                raise RuntimeError(f"{self._file.name}: .npy header size changed; cannot finalise shard")
            self._file.seek(0)
            self._file.write(short)
        self._file.close()
        self.shards.append(f"{self.name}_{len(self.shards):04d}.npy")
        self._file, self._rows = None, 0


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
    by_key: dict[str, ImageRef] = {}
    for r in refs:
        if r.key in by_key:
            raise ValueError(f"image key {r.key!r} is listed twice (two sources or folders with the same name); "
                             "rename one folder or drop one source")
        by_key[r.key] = r
    ordered = [by_key[k] for k in sample_order(list(by_key), seed)]
    # pools: the main source (n_images usable), then images of a fixed split (data.test_source)
    pools = [([r for r in ordered if not r.split], cfg.n_images),
             ([r for r in ordered if r.split], cfg.test_source.n_images or len(ordered))]
    writers = {(s, n): _ShardWriter(tmp / s, n, cfg.shard_size) for s in SPLITS for n in ("lr64", "lr256", "hr256")}
    images, excluded = [], []
    reasons: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    # forkserver: never fork a process whose thread pools (OpenMP, MLflow) are running
    ctx = get_context("spawn" if os.name == "nt" else "forkserver")
    workers = max(1, cfg.workers)
    total = sum(min(n, len(p)) for p, n in pools)
    try:
        with progress_bar(total=total, desc="prepare", unit="img", disable=not progress) as bar:
            for pool_refs, target in pools:
                if not pool_refs:
                    continue
                taken = 0
                pool = ctx.Pool(workers, _init_worker, (cfg,)) if workers > 1 else None
                try:
                    for ref, res in zip(pool_refs, _results(pool, [r.path for r in pool_refs], cfg, workers)):
                        if isinstance(res, ImageError):
                            excluded.append({"key": ref.key, "path": ref.path, "reason": res.reason,
                                             "message": str(res)})
                            reasons[res.reason] += 1
                            continue
                        split = split_for(ref, cfg)
                        rec = {"key": ref.key, "path": ref.path, "sha256": ref.sha256, "split": split,
                               "width": res.width, "height": res.height, "tiers": ["64"]}
                        if res.converted:
                            rec["converted"] = list(res.converted)
                            converted.update(res.converted)
                        rec["64"] = writers[(split, "lr64")].add(res.lr64)
                        if res.hr256 is not None:
                            rec["tiers"].append("256")
                            rec["256"] = writers[(split, "hr256")].add(res.hr256)
                            writers[(split, "lr256")].add(res.lr64)
                        images.append(rec)
                        bar.update(1)
                        taken += 1
                        if taken >= target:
                            break
                finally:
                    if pool is not None:
                        pool.terminate()
                        pool.join()
    finally:
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
        "excluded": dict(sorted(reasons.items())), "converted": dict(sorted(converted.items())), "counts": counts,
        "shards": {s: {n: writers[(s, n)].shards for n in ("lr64", "lr256", "hr256")} for s in SPLITS},
        "images": images, "excluded_images": excluded,
    }
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "manifest.json", "w") as f:  # streamed: no 10k-record string in memory
        json.dump(manifest, f, indent=1)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return manifest


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

    def images(self, split: str, name: str) -> np.ndarray:
        """All images of array ``name`` in ``split`` as one ``N x H x W x 3`` uint8 array (read into memory;
        ``0 x 1 x 1 x 3`` when empty)."""
        arrays = self.arrays(split, name)
        return np.concatenate([np.asarray(a) for a in arrays]) if arrays else np.zeros((0, 1, 1, 3), np.uint8)
