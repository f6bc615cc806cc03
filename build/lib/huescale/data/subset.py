"""Deterministic subset and split, from the image key alone (docs/architecture.md).

Both use SHA-256 of the key, so they are the same on every machine and Python
version, and adding images never moves an old one between splits.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def _unit(text: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def split_of(key: str, fractions: dict[str, float]) -> str:
    """The split (``train``/``val``/``test``) of an image key, by a stable hash of the key."""
    u, acc = _unit("split:" + key), 0.0
    for name in SPLITS:
        acc += fractions[name]
        if u < acc:
            return name
    return SPLITS[-1]


def sample_order(keys: list[str], seed: int) -> list[str]:
    """Keys in a seeded, stable random order: the first n are the subset of size n.

    A larger ``n`` takes a superset of a smaller one, for the same seed.
    """
    return sorted(keys, key=lambda k: _unit(f"subset:{seed}:{k}"))
