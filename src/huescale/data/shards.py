"""The pair store's shard files: arrays streamed row by row into fixed-size ``.npy`` shards."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np


class ShardWriter:
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
