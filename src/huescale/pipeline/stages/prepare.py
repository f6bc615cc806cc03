"""Stage ``prepare``: the 64/256 pair store from the listing (subset, split, exclusions, shards)."""

from __future__ import annotations

import dataclasses

from huescale.atomic import write_json
from huescale.config import Config
from huescale.data.sources import read_listing
from huescale.data.store_build import build_pair_store
from huescale.pipeline.stages import HOLDOUT_LISTINGS, HOLDOUT_PAIRS, LISTING, PAIRS


def run(cfg: Config) -> dict:
    """Build ``data/pairs`` and one store per held-out set (``data/holdout_pairs/<set>``, all images in the test
    split, at most ``data.holdout_images`` usable ones); returns usable/excluded/converted counts and images per
    split and tier.

    Raises:
        huescale.data.store_build.NotEnoughImagesError: fewer than ``data.min_images`` usable images.
    """
    manifest = build_pair_store(read_listing(LISTING), cfg.data, PAIRS, seed=cfg.seed)
    out = {"usable": manifest["usable"], "candidates_seen": manifest["candidates_seen"]}
    out.update({f"excluded_{k}": v for k, v in manifest["excluded"].items()})
    out.update({f"converted_{k}": v for k, v in manifest["converted"].items()})
    out.update({f"{s}_tier{t}": n for s, c in manifest["counts"].items() for t, n in c.items()})
    holdout_cfg = dataclasses.replace(cfg.data, min_images=1, split_map={},
                                      test_source=dataclasses.replace(cfg.data.test_source,
                                                                      n_images=cfg.data.holdout_images))
    write_json({"sets": list(cfg.data.holdout)}, HOLDOUT_PAIRS / "sets.json")  # the folder exists with no set too
    for name in cfg.data.holdout:
        held = build_pair_store(read_listing(HOLDOUT_LISTINGS / f"{name}.json"), holdout_cfg, HOLDOUT_PAIRS / name,
                                seed=cfg.seed)
        out.update({f"holdout_{name}_tier{t}": n for t, n in held["counts"]["test"].items()})
    return out
