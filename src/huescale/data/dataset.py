"""torch Datasets over the pair store: uint8 sRGB tensors, Lab on the device later."""

from __future__ import annotations

import bisect

import numpy as np
import torch
from torch.utils.data import Dataset

from huescale.data.store import TIER_ARRAYS, PairStore


class PairDataset(Dataset):
    """Images of one tier and split of a :class:`PairStore`.

    ``tier``: a :class:`huescale.data.store.Tier` (64 or 256) or its key ``"64"``/``"256"``.
    Item: a tuple of ``3 x H x W`` uint8 tensors (sRGB 0..255): tier ``"64"``
    gives ``(gt64,)``; tier ``"256"`` gives ``(lq64, gt256)``. Conversion to Lab
    happens batched on the training device (:mod:`huescale.color`).

    Raises:
        ValueError: for an unknown tier, or an empty split (names the split).
    """

    def __init__(self, store: PairStore, split: str, tier: str | int):
        tier = str(int(tier))  # huescale.data.store.Tier (an int) or its manifest key
        if tier not in TIER_ARRAYS:
            raise ValueError(f"unknown tier {tier!r}; use '64' or '256'")
        self.files = [store.shard_paths(split, n) for n in TIER_ARRAYS[tier]]
        self._shards: list[list[np.ndarray]] | None = None  # opened lazily in each process (workers pickle paths)
        sizes = [len(a) for a in store.arrays(split, TIER_ARRAYS[tier][0])]
        self.offsets = list(np.cumsum([0] + sizes))
        if self.offsets[-1] == 0:
            raise ValueError(f"{store.root}: split {split!r} has no images of tier {tier}; "
                             "use more images (data.n_images) or other data.splits")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self._shards is None:
            self._shards = [[np.load(f, mmap_mode="r") for f in files] for files in self.files]
        k = bisect.bisect_right(self.offsets, i) - 1
        j = i - self.offsets[k]
        return tuple(torch.from_numpy(np.array(s[k][j])).permute(2, 0, 1) for s in self._shards)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_shards": None}
