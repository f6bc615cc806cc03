"""The pair store's pool workers: :func:`huescale.data.tiers.process_image` in worker processes, results in
input order with bounded memory, arrays returned through a shared-memory ring of slots (:class:`Slots`).

The forkserver preloads this module (:func:`start_pool`): the worker functions and the per-process globals
they read (``_WORKER_CFG``, ``_WORKER_SLOTS``) must stay together in it. Keep it light to import (no tqdm,
no download code): every worker process imports it.
"""

from __future__ import annotations

import mmap
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from huescale.atomic import clean_stale_tmp, tmp_path
from huescale.config import DataConfig
from huescale.data.images import ImageError
from huescale.data.tiers import Prepared, process_image

Image.init()  # all format plugins once: the forkserver preloads this module, so every pool worker inherits them


def _work(path: str, cfg: DataConfig) -> Prepared | ImageError:
    try:
        return process_image(path, cfg)
    except ImageError as exc:
        # a fresh copy: the caught one holds its traceback (frames with the decoded image) and, through the
        # caller's frame, the list of results it sits in -- a reference cycle that kept ~200 kB per excluded
        # image alive in pool workers until a rare full garbage collection
        return ImageError(exc.path, exc.reason, exc.detail)


class Slots:
    """A ring of fixed-size result slots in a memory-mapped scratch file shared by the main process and
    the pool workers (``/dev/shm`` when there is one).

    A worker writes an image's ``hr`` and ``lr`` arrays into its slot and returns only the small
    metadata; the main process writes the shard rows straight from the slot. This replaces pickling
    ~200 KB per image through a pipe (a copy to pickle, two kernel copies, a copy to unpickle, on
    both sides of the pipe). Slot ``i`` of a chunk submitted as ``slot0`` is ``slot0 + i``; a slot is
    reused only after its chunk was consumed (:func:`results_in_order` keeps at most ``n`` images in flight).
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
    def create(cls, n: int, cfg: DataConfig, near: Path) -> Slots:
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
_WORKER_SLOTS: Slots | None = None


def _init_worker(cfg: DataConfig, slots: tuple[str, int] | None = None) -> None:
    global _WORKER_CFG, _WORKER_SLOTS
    _WORKER_CFG = cfg
    if slots is not None:
        _WORKER_SLOTS = Slots(Path(slots[0]), slots[1], cfg.hr_size, cfg.lr_size)


def _work_chunk(paths: list[str], slot0: int | None = None) -> list:
    """(worker) Process ``paths``; with slots, the arrays go to slots ``slot0 + i`` and only metadata returns."""
    assert _WORKER_CFG is not None, "_init_worker sets the config first"
    out = [_work(p, _WORKER_CFG) for p in paths]
    if slot0 is None or _WORKER_SLOTS is None:
        return out
    return [r if isinstance(r, ImageError) else _WORKER_SLOTS.put(slot0 + i, r) for i, r in enumerate(out)]


def results_in_order(pool, paths: list[str], cfg: DataConfig, workers: int, needed=None, chunk: int = 8,
             slots: Slots | None = None) -> Iterator:
    """Results of :func:`process_image` in input order, with at most ``4 x workers`` chunks in flight.

    Unlike ``Pool.imap`` (whose result queue is unbounded), a slow consumer
    never makes finished images pile up in memory. ``needed()`` (images the
    consumer still wants) stops submitting work past what can be used: near the
    target, at most one spare chunk per worker is in flight. With ``slots``
    (``4 x workers x chunk`` of them), arrays come back through shared memory
    (:class:`Slots`) and are valid until the next result is asked for.
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


def start_pool(ctx, workers: int, cfg: DataConfig, slots: Slots | None = None):
    """A pool of ``workers`` processes with ``cfg`` (and the result slots) installed; the forkserver
    preloads this module (one import for all workers instead of one each): the worker functions and the
    per-process globals they read (``_WORKER_CFG``, ``_WORKER_SLOTS``) all live here."""
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["__main__", __name__])
    return ctx.Pool(workers, _init_worker, (cfg, (str(slots.path), slots.n) if slots is not None else None))
