"""Stage ``evaluate``: score the colorizer, the two-step pipeline, the upscaler and the baselines on the test split."""

from __future__ import annotations

import torch

from huescale import tracking
from huescale.atomic import write_json
from huescale.config import Config
from huescale.config_io import to_flat_dict
from huescale.data.store import PairStore
from huescale.evaluation import evaluate as ev
from huescale.pipeline.stages import (
    COLORIZER,
    EVAL_METRICS,
    HOLDOUT_PAIRS,
    HOLDOUT_SAMPLES,
    PAIRS,
    PER_IMAGE,
    SAMPLES,
    UPSCALER,
)
from huescale.pipeline.stages.runner import device
from huescale.training import checkpoint


def run(cfg: Config) -> dict:
    """Write ``metrics.json`` (test split and held-out sets; docs/architecture.md), ``eval/per_image.csv``, the
    sample grid ``eval/samples`` and the held-out sample grids ``eval/holdout``.

    Raises:
        huescale.training.checkpoint.CheckpointError: a model checkpoint is missing (names the stage to run).
    """
    dev = device(cfg)
    colorizer, _ = checkpoint.load_model(COLORIZER, dev)
    upscaler, _ = checkpoint.load_model(UPSCALER, dev)
    store = PairStore(PAIRS)
    images = ev.run_models(store, colorizer, upscaler, dev, cfg.data.scale, cfg.evaluate.batch_size)
    fid, reason = ev.fid_or_reason(cfg.evaluate, dev)
    result, per_image = ev.score(images, cfg.evaluate.epsilon, cfg.data.scale, fid, reason,
                                 cfg.evaluate.metrics)
    lr = cfg.data.lr_size
    result["fps"] = {"device": dev.type, "dtype": "float32", "batch_sizes": [1, 64],
                     "threads": torch.get_num_threads(),
                     "colorizer_batch1": ev.measure_fps(colorizer, (1, lr, lr), dev, 1),
                     "colorizer_batch64": ev.measure_fps(colorizer, (1, lr, lr), dev, 64, 1, 2),
                     "upscaler_batch1": ev.measure_fps(upscaler, (1, lr, lr), dev, 1)}
    result["holdout"], rows = {}, []
    for name in cfg.data.holdout:
        held, held_images = ev.score_holdout(PairStore(HOLDOUT_PAIRS / name), colorizer, upscaler, dev,
                                             cfg.evaluate.epsilon, cfg.data.scale, cfg.evaluate.batch_size,
                                             cfg.evaluate.metrics)
        result["holdout"][name] = held
        rows += ev.save_holdout_samples(held_images, HOLDOUT_SAMPLES, name, cfg.evaluate.holdout_rows)
    HOLDOUT_SAMPLES.mkdir(parents=True, exist_ok=True)
    write_json({"rows": rows}, HOLDOUT_SAMPLES / "index.json")
    result = ev.finite_or_none(result)
    write_json(result, EVAL_METRICS)
    ev.write_per_image_csv(per_image, store, PER_IMAGE)
    samples = ev.save_samples(images, SAMPLES, cfg.evaluate.grid_rows, [r["key"] for r in store.records("test", "256")])
    write_json({"rows": samples}, SAMPLES / "index.json")
    tracking.log_metrics({k: v for k, v in to_flat_dict(result).items() if isinstance(v, (int, float))})
    tracking.log_artifact(EVAL_METRICS)
    return {}
