"""Stage ``prepare``: the 64/256 pair store from the listing (subset, split, exclusions, shards)."""

from __future__ import annotations

from huescale.config import Config
from huescale.stages import LISTING, PAIRS


def run(cfg: Config) -> dict:
    """Build ``data/pairs``; returns usable/excluded/converted counts and images per split and tier.

    Raises:
        huescale.data.store.NotEnoughImagesError: fewer than ``data.min_images`` usable images.
    """
    from huescale.data.sources import read_listing
    from huescale.data.store import build_pair_store

    manifest = build_pair_store(read_listing(LISTING), cfg.data, PAIRS, seed=cfg.seed)
    out = {"usable": manifest["usable"], "candidates_seen": manifest["candidates_seen"]}
    out.update({f"excluded_{k}": v for k, v in manifest["excluded"].items()})
    out.update({f"converted_{k}": v for k, v in manifest["converted"].items()})
    out.update({f"{s}_tier{t}": n for s, c in manifest["counts"].items() for t, n in c.items()})
    return out
