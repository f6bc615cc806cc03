"""Stage ``features``: the frozen encoder's features of every training and validation photograph, computed once
(:mod:`huescale.data.features`), for a colorizer with a pretrained encoder (``semantic``); for other colorizers
it leaves an empty cache."""

from __future__ import annotations

import time

from huescale import models
from huescale.config import Config
from huescale.data import features
from huescale.data.store import PairStore
from huescale.pipeline.stages import FEATURES, PAIRS
from huescale.pipeline.stages.runner import device

BATCH_SIZE = 64  # photographs per encoder pass: EfficientNet-Lite0 at 128 px, ~0.5 GB of activations on a CPU


def run(cfg: Config) -> dict:
    """Encode ``data/pairs`` (train and val, tier 64) into ``data/features``; returns the cache's figures.

    Raises:
        huescale.models.backbones.BackboneError: the encoder's weights are missing or corrupt.
    """
    spec = cfg.model.colorizer
    model = models.build(spec.name, **spec.kwargs)
    if not features.has_encoder(model):
        features.clear(FEATURES)
        return {"features_encoder": "none", "features_images": 0}
    model.load_pretrained()  # type: ignore[operator]  # the weights the frozen phase starts from
    t0 = time.perf_counter()
    manifest = features.build(model, PairStore(PAIRS), FEATURES, device=device(cfg), batch_size=BATCH_SIZE)
    n = sum(e["n"] for entries in manifest["splits"].values() for e in entries)
    return {"features_encoder": manifest["encoder"], "features_images": n,
            "features_shards_computed": manifest["computed"], "features_shards_reused": manifest["reused"],
            "features_s": round(time.perf_counter() - t0, 1)}
