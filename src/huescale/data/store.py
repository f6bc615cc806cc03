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
    {split}/gt64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 64: the colour image, colorization target)
    {split}/gt256_{k:04d}.npy         N x 256 x 256 x 3 uint8 (tier 256: the HR crop)
    {split}/lq64_{k:04d}.npy          N x 64 x 64 x 3 uint8   (tier 256: its x1/4 LR, aligned with gt256)

Array names follow BasicSR's lq (low quality: the input side) / gt (ground truth) with their side in pixels.
"""

from __future__ import annotations

import enum
import io
import json
import mmap
import os
import shutil
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

from huescale.atomic import atomic_open, clean_stale_tmp, commit, fsync_dir, tmp_path
from huescale.config import DataConfig
from huescale.data.images import ImageError, is_grayscale, open_rgb
from huescale.data.subset import SPLITS, sample_order, split_of
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar
from huescale.resize import imresize, resize_matrix

if TYPE_CHECKING:  # the pool workers import this module: keep it light (no tqdm, no download code)
    from huescale.data.sources import ImageRef

Image.init()  # all format plugins once: the forkserver preloads this module, so every pool worker inherits them

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
def _bands(in_length: int, out_length: int, channels: int = 1, rows: int = 4,
           dtype: type = np.float64) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """:func:`huescale.resize.resize_matrix` cut into bands of ``rows`` output pixels.

    Each band is ``(o0, o1, i0, i1, weights)``: outputs ``o0:o1`` depend only on inputs
    ``i0:i1``, through the dense float64 block ``weights``. With ``channels == 1`` the block is
    ``(o1 - o0) x (i1 - i0)`` (a left factor: rows of an image); with ``channels = c`` it is the
    right factor for pixel-interleaved columns, ``kron(block.T, I_c)``, and the indices count
    values (pixel x c + channel). Small bands keep each matrix product below OpenBLAS's threading
    threshold (threads fighting over 2 busy cores cost 10-50x) and skip the ~94 % zeros of the
    full matrix. ``dtype``: of the row-pass blocks (float32 only where exact, see
    :func:`_rows_exact_in_float32`).
    """
    mat = resize_matrix(in_length, out_length)
    bands: list = []
    for o0 in range(0, out_length, rows):
        o1 = min(o0 + rows, out_length)
        nz = np.flatnonzero((mat[o0:o1] != 0).any(axis=0))
        i0, i1 = int(nz[0]), int(nz[-1]) + 1
        block = mat[o0:o1, i0:i1]
        if channels == 1:
            bands.append((o0, o1, i0, i1, np.ascontiguousarray(block, dtype=dtype)))
        else:
            c = channels
            bands.append((o0 * c, o1 * c, i0 * c, i1 * c, np.ascontiguousarray(np.kron(block.T, np.eye(c)))))
    return tuple(bands)


@lru_cache(maxsize=64)
def _rows_exact_in_float32(in_length: int, out_length: int) -> bool:
    """Whether the row pass of ``in_length -> out_length`` is exact in float32 on uint8 input: every weight a
    multiple of 2^-15, so each product and partial sum (< 2^9 in magnitude) fits float32's 24-bit mantissa."""
    w = resize_matrix(in_length, out_length) * 2.0**15
    return bool(np.array_equal(w, np.round(w)))


def matlab_downscale(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB bicubic ``imresize`` of an ``H x W x C`` uint8 image, computed band by band.

    The same weights as :func:`huescale.resize.imresize` (MATLAB's antialiased a = -0.5
    kernel, symmetric borders), rows then columns, each pass as a few small matrix products
    over the non-zero bands of the resize matrices (:func:`_bands`), with no transposes (the
    column pass multiplies the pixel-interleaved rows from the right): ~5x faster than a
    gather of the taps.

    For an integer factor such as the store's 256 -> 64 (x1/4), the weights are dyadic
    rationals (multiples of 2^-12), so every product and sum of uint8 values is exact in
    float64: the result is bit-identical to ``imresize`` whatever the summation order; the
    row pass is then even exact in float32, which it uses (half the memory traffic). For
    other factors it agrees up to float64 rounding (a value on an exact .5 tie may round the
    other way), so the store uses it for the x1/4 step only.

    Returns:
        ``size[0] x size[1] x C`` uint8, rounded and clipped like ``imresize``.
    """
    h, w, c = a.shape
    oh, ow = size
    if _rows_exact_in_float32(h, oh):
        x = a.reshape(h, w * c).astype(np.float32)
        y = np.empty((oh, w * c), dtype=np.float32)
        for o0, o1, i0, i1, m in _bands(h, oh, 1, 4, np.float32):
            np.matmul(m, x[i0:i1], out=y[o0:o1])
        y = y.astype(np.float64)
    else:
        x = a.reshape(h, w * c).astype(np.float64)
        y = np.empty((oh, w * c))
        for o0, o1, i0, i1, m in _bands(h, oh):
            np.matmul(m, x[i0:i1], out=y[o0:o1])
    z = np.empty((oh, ow * c))
    for o0, o1, i0, i1, k in _bands(w, ow, c):
        np.matmul(y[:, i0:i1], k, out=z[:, o0:o1])
    return np.clip(np.round(z), 0, 255).astype(np.uint8).reshape(oh, ow, c)


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
        # a fresh copy: the caught one holds its traceback (frames with the decoded image) and, through the
        # caller's frame, the list of results it sits in -- a reference cycle that kept ~200 kB per excluded
        # image alive in pool workers until a rare full garbage collection
        return ImageError(exc.path, exc.reason, exc.detail)


class _Slots:
    """A ring of fixed-size result slots in a memory-mapped scratch file shared by the main process and
    the pool workers (``/dev/shm`` when there is one).

    A worker writes an image's ``hr`` and ``lr`` arrays into its slot and returns only the small
    metadata; the main process writes the shard rows straight from the slot. This replaces pickling
    ~200 KB per image through a pipe (a copy to pickle, two kernel copies, a copy to unpickle, on
    both sides of the pipe). Slot ``i`` of a chunk submitted as ``slot0`` is ``slot0 + i``; a slot is
    reused only after its chunk was consumed (:func:`_results` keeps at most ``n`` images in flight).
    """

    def __init__(self, path: Path, n: int, hr: int, lr: int, create: bool = False):
        self.path, self.n, self.hr, self.lr = path, n, hr, lr
        self.hr_bytes, self.lr_bytes = hr * hr * 3, lr * lr * 3
        size = n * (self.hr_bytes + self.lr_bytes)
        with open(path, "w+b" if create else "r+b") as f:
            if create:
                f.truncate(size)
            self._mmap = mmap.mmap(f.fileno(), size)
        # a plain ndarray over the mapping: slicing np.memmap runs Python code per view
        self.mem = np.frombuffer(self._mmap, dtype=np.uint8).reshape(n, self.hr_bytes + self.lr_bytes)

    @classmethod
    def create(cls, n: int, cfg: DataConfig, near: Path) -> _Slots:
        """A new scratch file for ``n`` slots, in ``/dev/shm`` if writable, else in folder ``near``."""
        shm = Path("/dev/shm")
        folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else near
        clean_stale_tmp(folder / "huescale-slots")  # the scratch files of killed runs
        path = tmp_path(folder / "huescale-slots")  # .huescale-slots.<pid>.tmp
        return cls(path, n, cfg.hr_size, cfg.lr_size, create=True)

    def put(self, i: int, res: Prepared) -> tuple[int, int, tuple[str, ...], bool]:
        """(worker) Store ``res``'s arrays in slot ``i``; returns what the main process needs besides them."""
        row = self.mem[i]
        row[self.hr_bytes:] = res.lr64.reshape(-1)
        if res.hr256 is not None:
            row[:self.hr_bytes] = res.hr256.reshape(-1)
        return res.width, res.height, res.converted, res.hr256 is not None

    def get(self, i: int, meta: tuple[int, int, tuple[str, ...], bool]) -> Prepared:
        """(main) The image in slot ``i`` as a :class:`Prepared` whose arrays are views of the slot (valid
        until the slot is reused: write them out before asking for more results)."""
        w, h, converted, has_hr = meta
        row = self.mem[i]
        lr = row[self.hr_bytes:].reshape(self.lr, self.lr, 3)
        hr = row[:self.hr_bytes].reshape(self.hr, self.hr, 3) if has_hr else None
        return Prepared(lr64=lr, hr256=hr, width=w, height=h, converted=converted)

    def close(self, remove: bool = False) -> None:
        """Unmap; ``remove`` deletes the scratch file (the main process does, at the end)."""
        self.__dict__.pop("mem", None)  # drop the view first, so the mapping can close
        try:
            self._mmap.close()
        except BufferError:  # a view is still alive somewhere: the mapping goes with it
            pass
        if remove:
            self.path.unlink(missing_ok=True)


_WORKER_CFG: DataConfig | None = None  # set once per worker process (not pickled with every image)
_WORKER_SLOTS: _Slots | None = None


def _init_worker(cfg: DataConfig, slots: tuple[str, int] | None = None) -> None:
    global _WORKER_CFG, _WORKER_SLOTS
    _WORKER_CFG = cfg
    if slots is not None:
        _WORKER_SLOTS = _Slots(Path(slots[0]), slots[1], cfg.hr_size, cfg.lr_size)


def _work_chunk(paths: list[str], slot0: int | None = None) -> list:
    """(worker) Process ``paths``; with slots, the arrays go to slots ``slot0 + i`` and only metadata returns."""
    assert _WORKER_CFG is not None, "_init_worker sets the config first"
    out = [_work(p, _WORKER_CFG) for p in paths]
    if slot0 is None or _WORKER_SLOTS is None:
        return out
    return [r if isinstance(r, ImageError) else _WORKER_SLOTS.put(slot0 + i, r) for i, r in enumerate(out)]


def _results(pool, paths: list[str], cfg: DataConfig, workers: int, needed=None, chunk: int = 8,
             slots: _Slots | None = None) -> Iterator:
    """Results of :func:`process_image` in input order, with at most ``4 x workers`` chunks in flight.

    Unlike ``Pool.imap`` (whose result queue is unbounded), a slow consumer
    never makes finished images pile up in memory. ``needed()`` (images the
    consumer still wants) stops submitting work past what can be used: near the
    target, at most one spare chunk per worker is in flight. With ``slots``
    (``4 x workers x chunk`` of them), arrays come back through shared memory
    (:class:`_Slots`) and are valid until the next result is asked for.
    """
    if pool is None:
        for p in paths:
            yield _work(p, cfg)
        return
    pending: deque = deque()
    queued = 0  # images in the pending chunks
    i = submitted = 0
    while i < len(paths) or pending:
        while i < len(paths) and len(pending) < 4 * workers and (
                not pending or needed is None or queued < needed() + workers * chunk):
            part = paths[i:i + chunk]
            slot0 = (submitted * chunk) % slots.n if slots is not None else None
            pending.append((len(part), slot0, pool.apply_async(_work_chunk, (part, slot0))))
            queued += len(part)
            submitted += 1
            i += chunk
        n, slot0, res = pending.popleft()
        queued -= n
        for k, r in enumerate(res.get()):
            if slots is None or slot0 is None or isinstance(r, (ImageError, Prepared)):
                yield r
            else:
                yield slots.get(slot0 + k, r)


def _pool(ctx, workers: int, cfg: DataConfig, slots: _Slots | None = None):
    """A pool of ``workers`` processes with ``cfg`` (and the result slots) installed; the forkserver
    preloads this module (one import for all workers instead of one each)."""
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["__main__", __name__])
    return ctx.Pool(workers, _init_worker, (cfg, (str(slots.path), slots.n) if slots is not None else None))


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
        self._file.flush()
        os.fsync(self._file.fileno())
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


def _build(by_key: dict[str, ImageRef], cfg: DataConfig, tmp: Path, seed: int, progress: bool) -> dict:
    """The work of :func:`build_pair_store`, writing shards into ``tmp``; returns the manifest."""

    ordered = [by_key[k] for k in sample_order(list(by_key), seed)]
    # pools: the main source (n_images usable), then images of a fixed split (data.test_source)
    pools = [([r for r in ordered if not r.split], cfg.n_images),
             ([r for r in ordered if r.split], cfg.test_source.n_images or len(ordered))]
    writers = {(s, n): _ShardWriter(tmp / s, n, cfg.shard_size) for s in SPLITS for n in ARRAYS}
    images, excluded = [], []
    reasons: Counter[str] = Counter()
    converted: Counter[str] = Counter()
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
                    slots = _Slots.create(4 * workers * chunk, cfg, tmp.parent)
                    pool = _pool(ctx, workers, cfg, slots)  # one pool for both sources
                taken = 0
                for ref, res in zip(pool_refs, _results(pool, [r.path for r in pool_refs], cfg, workers,
                                                        lambda: target - taken, chunk, slots)):  # noqa: B023 (read while this loop runs)
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
                    rec["64"] = writers[(split, "gt64")].add(res.lr64)
                    if res.hr256 is not None:
                        rec["tiers"].append("256")
                        rec["256"] = writers[(split, "gt256")].add(res.hr256)
                        writers[(split, "lq64")].add(res.lr64)
                    images.append(rec)
                    bar.update(1)
                    taken += 1
                    if taken >= target:
                        break
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if slots is not None:
            slots.close(remove=True)
        for w in writers.values():
            w.flush()
    if len(images) < cfg.min_images:
        raise NotEnoughImagesError(
            f"only {len(images)} usable images (need data.min_images={cfg.min_images}); excluded: "
            f"{dict(reasons)}; add photographs to the source or lower data.min_images"
        )
    counts = {s: {t: writers[(s, TIER_ARRAYS[t][-1])].count for t in TIER_ARRAYS} for s in SPLITS}
    return {
        "hr_size": cfg.hr_size, "lr_size": cfg.lr_size, "scale": cfg.scale,
        "candidates_seen": len(images) + len(excluded), "usable": len(images),
        "excluded": dict(sorted(reasons.items())), "converted": dict(sorted(converted.items())), "counts": counts,
        "shards": {s: {n: writers[(s, n)].shards for n in ARRAYS} for s in SPLITS},
        "images": images, "excluded_images": excluded,
    }


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
