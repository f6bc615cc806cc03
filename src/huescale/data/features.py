"""A content-addressed cache of a frozen encoder's features, next to the pair store.

While a colorizer's ImageNet-pretrained encoder is frozen (:class:`huescale.models.semantic.SemanticColorizer`,
first phase), its features of a photograph never change, so they are computed once per photograph and read
back every epoch: a decoder epoch then costs no encoder forward pass. The cache is laid out as

``<root>/<encoder key>/<shard sha256[:16]>.f<i>.npy``: ``N x C_i x h_i x w_i`` float16, the ``i``-th feature map
of the ``N`` photographs of one ``gt64`` shard of the pair store, and ``<root>/manifest.json`` (which files make
each split, in store order).

- **Content-addressed**: the encoder key hashes the backbone name, the working size and the encoder's weights;
  the shard key hashes the shard's bytes. Other weights or another size never read stale features, and the
  same photographs under the same encoder are never computed twice.
- **Resumable**: each file is written atomically (:func:`huescale.atomic.atomic_path`) and a file already
  present is kept, so a killed run continues where it stopped. Files no split refers to are removed at
  the end.
- In DVC: the ``features`` stage writes it (``data/features``, ``persist: true`` so a re-run resumes).

Storage: EfficientNet-Lite0 at 128 px gives 47,104 values a photograph (94 KB in float16).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from huescale.atomic import atomic_path, write_json
from huescale.color import uint8_to_lab_normalized
from huescale.data.dataset import PairDataset
from huescale.data.download import file_digest
from huescale.data.store import PairStore
from huescale.progress import bar as progress_bar

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
VERSION = 1


def has_encoder(model: nn.Module) -> bool:
    """Whether ``model`` has a cacheable encoder (``encode(L) -> list of features`` and ``features=`` in forward)."""
    return callable(getattr(model, "encode", None)) and hasattr(model, "n_features")


def encoder_key(model: nn.Module) -> str:
    """16 hex digits of SHA-256 over the backbone name, the working size and every encoder tensor's bytes."""
    h = hashlib.sha256(json.dumps([getattr(model, "backbone", ""), getattr(model, "size", 0), VERSION]).encode())
    for name, t in model.encoder.state_dict().items():  # type: ignore[union-attr]
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def build(model: nn.Module, store: PairStore, root: str | Path, splits: tuple[str, ...] = ("train", "val"),
          device: torch.device | str = "cpu", batch_size: int = 64, progress: bool = True) -> dict:
    """Compute (or reuse) the encoder features of every 64 px photograph of ``splits``; write the manifest.

    Args:
        model: a colorizer with an encoder (:func:`has_encoder`), its encoder weights as training will freeze them.
        store: the pair store whose ``gt64`` shards are encoded.
        root: the cache folder (``data/features``).
        splits: the splits to encode (training reads ``train`` and validates on ``val``).
        device: where the encoder runs; batch_size: photographs per forward pass.

    Returns:
        The manifest: ``{"encoder": key, "backbone", "size", "splits": {split: [{"shard", "n", "files"}]},
        "computed": shards encoded now, "reused": shards found}``.

    Raises:
        ValueError: ``model`` has no encoder.
    """
    if not has_encoder(model):
        raise ValueError(f"{type(model).__name__} has no encoder whose features could be cached")
    root, device = Path(root), torch.device(device)
    model = model.to(device).eval()
    key = encoder_key(model)
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"version": VERSION, "encoder": key, "backbone": getattr(model, "backbone", ""),
                      "size": getattr(model, "size", 0), "splits": {}, "computed": 0, "reused": 0}
    shards = [(s, p) for s in splits for p in store.shard_paths(s, "gt64")]
    total = sum(len(np.load(p, mmap_mode="r")) for _, p in shards)
    bar = progress_bar(total=total, unit="img", desc="encoder features", disable=not progress)
    for split, shard in shards:
        images = np.load(shard, mmap_mode="r")
        sha = file_digest(shard, "sha256")[:16]
        files = [f"{key}/{sha}.f{i}.npy" for i in range(int(model.n_features))]  # type: ignore[arg-type]
        if all((root / f).is_file() for f in files):
            manifest["reused"] += 1
        else:
            parts: list[list[np.ndarray]] = [[] for _ in files]
            for i in range(0, len(images), batch_size):
                x = torch.from_numpy(np.array(images[i:i + batch_size])).permute(0, 3, 1, 2).to(device)
                for acc, f in zip(parts, model.encode(uint8_to_lab_normalized(x)[0])):  # type: ignore[operator]
                    acc.append(f.float().cpu().numpy().astype(np.float16))
                bar.update(min(batch_size, len(images) - i))
            for f, acc in zip(files, parts):  # each file atomically: a kill leaves whole files or none
                with atomic_path(root / f, ".npy") as tmp:
                    np.save(tmp, np.concatenate(acc))
            manifest["computed"] += 1
        manifest["splits"].setdefault(split, []).append({"shard": shard.name, "n": len(images), "files": files})
    bar.close()
    keep = {f for entries in manifest["splits"].values() for e in entries for f in e["files"]}
    for old in root.glob("*/*.npy"):  # another encoder's or a former store's features
        if f"{old.parent.name}/{old.name}" not in keep:
            old.unlink()
    for d in root.iterdir():
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    write_json(manifest, root / MANIFEST)
    log.info("encoder features %s: %d shards computed, %d reused", key, manifest["computed"], manifest["reused"])
    return manifest


def clear(root: str | Path) -> None:
    """Leave ``root`` as an empty cache (a manifest with no encoder and no splits): a colorizer without an encoder."""
    root = Path(root)
    for old in root.glob("*/*.npy"):
        old.unlink()
    for d in root.glob("*"):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    root.mkdir(parents=True, exist_ok=True)
    write_json({"version": VERSION, "encoder": None, "splits": {}, "computed": 0, "reused": 0}, root / MANIFEST)


class FeatureDataset(Dataset):
    """A :class:`~huescale.data.dataset.PairDataset` (tier 64) whose items carry the cached encoder features.

    Item: ``(gt64, f_0, ..., f_{k-1})``: the ``3 x 64 x 64`` uint8 photograph, then each feature map
    ``C_i x h_i x w_i`` as float32.

    Raises:
        FileNotFoundError: no cache manifest (names the stage to run).
        ValueError: the cache was made by another encoder (``expect_key``) or does not cover the split's shards.
    """

    def __init__(self, store: PairStore, split: str, root: str | Path, expect_key: str | None = None):
        self.pairs = PairDataset(store, split, "64")
        root = Path(root)
        mf = root / MANIFEST
        if not mf.is_file():
            raise FileNotFoundError(f"{mf}: no encoder feature cache; run the features stage (dvc repro features)")
        manifest = json.loads(mf.read_text())
        if expect_key is not None and manifest.get("encoder") != expect_key:
            raise ValueError(f"{root}: features of encoder {manifest.get('encoder')}, but this model's encoder is "
                             f"{expect_key}; re-run the features stage (dvc repro features)")
        entries = manifest["splits"].get(split, [])
        want = [p.name for p in store.shard_paths(split, "gt64")]
        if [e["shard"] for e in entries] != want:
            raise ValueError(f"{root}: the cached features do not cover the {split} shards of {store.root}; "
                             "re-run the features stage (dvc repro features)")
        self.files = [[root / f for f in e["files"]] for e in entries]
        self.offsets = list(np.cumsum([0] + [e["n"] for e in entries]))
        self._arrays: list[list[np.ndarray]] | None = None  # opened lazily in each process

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if self._arrays is None:
            self._arrays = [[np.load(f, mmap_mode="r") for f in files] for files in self.files]
        k = bisect.bisect_right(self.offsets, i) - 1
        j = i - self.offsets[k]
        return (*self.pairs[i], *(torch.from_numpy(np.asarray(a[j], dtype=np.float32)) for a in self._arrays[k]))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}
