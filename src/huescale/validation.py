"""The values of the params that types cannot check, checked when they are read (:func:`validate`).

Everything a stage would find wrong later is caught here, before any stage does work, with the dotted key,
the file and the allowed values in the message: sources and splits, every training phase's optimiser
settings and loss names, model names and keyword arguments (against the registry, without building a model:
nothing is downloaded or loaded), the metric names, evaluation and runtime settings. :func:`huescale.config.
parse_config` runs it on every params file.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import TYPE_CHECKING

from huescale.errors import ConfigError
from huescale.metrics import METRICS

if TYPE_CHECKING:
    from huescale.config import Config, DataConfig, ModelSpec, OptimConfig, TrainConfig

SOURCES = ("imagenette", "coco", "voc", "hf", "folder")
NO_UPSCALER = "bicubic"  # model.upscaler.name: no network, the MATLAB-bicubic upscale (ablation rows)
# the learning-rate schedules huescale.training.trainer implements (defined here, below it: every stage loads
# params, and a stage must not depend on the trainer's code unless it trains)
LR_SCHEDULES = ("constant", "cosine")


def validate(cfg: Config, src: str = "params.yaml") -> Config:
    """Check values that types cannot; returns ``cfg``.

    Raises:
        ConfigError: the first wrong value, naming its dotted key, ``src`` and the allowed values.
    """
    _check_calibrate(cfg, src)
    _check_data(cfg, src)
    _check_phases(cfg, src)
    _check_evaluate_and_runtime(cfg, src)
    _validate_models(cfg, src)
    _validate_losses(cfg, src)
    _validate_metrics(cfg, src)
    _check_benchmark_and_devices(cfg, src)
    return cfg


def _check_calibrate(cfg: Config, src: str) -> None:
    """The decoding rule's colourfulness band and its photographs."""
    c = cfg.calibrate
    if not 0 <= c.min_colourfulness <= c.max_colourfulness or c.images < 1:
        raise ConfigError(f"{src}: calibrate needs 0 <= min_colourfulness <= max_colourfulness and images >= 1, "
                          f"got {c.min_colourfulness}, {c.max_colourfulness}, {c.images}")


def _check_data(cfg: Config, src: str) -> None:
    """The data source, splits, sizes and guards (and, through :func:`_validate_sources`, each source)."""
    d = cfg.data
    if d.source not in SOURCES:
        raise ConfigError(f"{src}: data.source must be one of {', '.join(SOURCES)}, got {d.source!r}")
    if d.source == "folder" and not d.folders:
        raise ConfigError(f"{src}: data.source=folder needs data.folders: a list of image directories")
    _validate_sources(d, src)
    if (set(d.splits) != {"train", "val", "test"} or abs(sum(d.splits.values()) - 1) > 1e-6
            or min(d.splits.values()) < 0):
        raise ConfigError(f"{src}: data.splits must give train/val/test fractions summing to 1, got {d.splits}")
    if d.hr_size % d.scale or d.scale < 2:
        raise ConfigError(f"{src}: data.hr_size ({d.hr_size}) must be a multiple of data.scale ({d.scale} >= 2)")
    if d.small_images not in ("skip", "upscale"):
        raise ConfigError(f"{src}: data.small_images must be 'skip' or 'upscale', got {d.small_images!r}")
    if d.n_images < 1 or d.shard_size < 1:
        raise ConfigError(f"{src}: data.n_images and data.shard_size must be >= 1")
    if not (math.isfinite(d.gray_tolerance) and d.gray_tolerance >= 0):
        raise ConfigError(f"{src}: data.gray_tolerance is a colour distance in 8-bit levels and must be >= 0 "
                          f"(0: only exact gray counts as gray), got {d.gray_tolerance}")
    for key in ("min_images", "max_pixels"):
        if getattr(d, key) < 1:
            raise ConfigError(f"{src}: data.{key} must be >= 1, got {getattr(d, key)}")
    if d.workers < 0:
        raise ConfigError(f"{src}: data.workers must be >= 0, got {d.workers}")
    if not d.max_extract_ratio >= 1 or d.max_extract_bytes < 1:
        raise ConfigError(f"{src}: data.max_extract_ratio must be >= 1 (uncompressed / archive size) and "
                          f"data.max_extract_bytes >= 1, got {d.max_extract_ratio} and {d.max_extract_bytes}")


def _phases(cfg: Config) -> list[tuple[str, OptimConfig | TrainConfig]]:
    """Every training phase's settings by dotted name: the three pre-training phases, then the adversarial one."""
    p = cfg.pretrain
    return [("pretrain.colorizer", p.colorizer), ("pretrain.upscaler", p.upscaler), ("pretrain.finetune", p.finetune),
            ("train", cfg.train)]


def _check_phases(cfg: Config, src: str) -> None:
    """Every training phase: init, fine-tuning, loss weights, epochs, batch size, lr, betas, schedule."""
    t = cfg.train
    if t.init not in ("pretrained", "scratch"):
        raise ConfigError(f"{src}: train.init must be pretrained or scratch, got {t.init!r}")
    ft = cfg.pretrain.finetune
    if ft.epochs < 0 or not ft.encoder_lr_scale > 0:
        raise ConfigError(f"{src}: pretrain.finetune needs epochs >= 0 (0: no fine-tuning) and encoder_lr_scale > 0, "
                          f"got {ft.epochs}, {ft.encoder_lr_scale}")
    for name, o in _phases(cfg)[:3]:  # the pre-training phases
        if o.losses.get("gan", 0) > 0:
            raise ConfigError(f"{src}: {name}.losses.gan: pre-training has no discriminator; remove the gan term")
    for name, o in _phases(cfg):
        bad = {k: w for k, w in o.losses.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ConfigError(f"{src}: {name}.losses: weights must be finite numbers >= 0, got {bad}")
    if t.losses.get("gan", 0) <= 0:
        raise ConfigError(f"{src}: train.losses.gan must be > 0: the train stage is the adversarial phase "
                          "(lambda_GAN; the source documents use 1)")
    for name, o in _phases(cfg):
        if o.epochs < (0 if o is ft else 1) or o.batch_size < 1 or not (math.isfinite(o.lr) and o.lr > 0):
            raise ConfigError(f"{src}: {name}: epochs and batch_size must be >= 1 (finetune: epochs >= 0) and lr a "
                              f"finite number > 0, got epochs={o.epochs}, batch_size={o.batch_size}, lr={o.lr}")
        if len(o.betas) != 2 or not all(math.isfinite(b) and 0 <= b < 1 for b in o.betas):
            raise ConfigError(f"{src}: {name}.betas must be two numbers in [0, 1) (Adam's beta1, beta2, e.g. "
                              f"[0.9, 0.999]), got {o.betas}")
        if o.max_batches < 0:
            raise ConfigError(f"{src}: {name}.max_batches must be >= 0 (0: every batch), got {o.max_batches}")
        if o.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"{src}: {name}.lr_schedule must be {' or '.join(LR_SCHEDULES)}, got {o.lr_schedule!r}")
        if o.checkpoint_every < 0:
            raise ConfigError(f"{src}: {name}.checkpoint_every must be >= 0 (0: only at epoch ends), "
                              f"got {o.checkpoint_every}")


def _check_evaluate_and_runtime(cfg: Config, src: str) -> None:
    """Evaluation settings, collapse detection, worker and thread counts."""
    if not 0 < cfg.evaluate.epsilon < 1:
        raise ConfigError(f"{src}: evaluate.epsilon is a fraction of 255 in (0, 1), got {cfg.evaluate.epsilon}")
    ev = cfg.evaluate
    for key, low in (("batch_size", 1), ("fid_batch_size", 1), ("grid_rows", 0), ("holdout_rows", 0)):
        if getattr(ev, key) < low:
            raise ConfigError(f"{src}: evaluate.{key} must be >= {low}, got {getattr(ev, key)}")
    t = cfg.train
    if not (math.isfinite(t.collapse_threshold) and t.collapse_threshold >= 0) or t.collapse_steps < 1:
        raise ConfigError(f"{src}: train.collapse_steps must be >= 1 and train.collapse_threshold a finite number "
                          f">= 0, got {t.collapse_steps} and {t.collapse_threshold}")
    if cfg.runtime.num_workers < 0 or cfg.runtime.threads < 0:
        raise ConfigError(f"{src}: runtime.num_workers and runtime.threads must be >= 0 (threads 0: torch's "
                          f"default), got {cfg.runtime.num_workers} and {cfg.runtime.threads}")


def _check_benchmark_and_devices(cfg: Config, src: str) -> None:
    """Benchmark samples, autocast and device names."""
    if cfg.benchmark.samples < 0:
        raise ConfigError(f"{src}: benchmark.samples must be >= 0, got {cfg.benchmark.samples}")
    if cfg.runtime.amp not in ("auto", "bf16", "off"):
        raise ConfigError(f"{src}: runtime.amp must be auto, bf16 or off, got {cfg.runtime.amp!r}")
    if cfg.runtime.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"{src}: runtime.device must be auto, cpu or cuda, got {cfg.runtime.device!r}")


def _validate_models(cfg: Config, src: str) -> None:
    """Every ``model.<role>.name`` is registered (:func:`huescale.models.available`) and its ``kwargs`` are
    parameters of that model's constructor: checked on the signature, no model is built (a model that
    loads pretrained weights when built would otherwise download them here)."""
    # lazy: models and training.losses import torch; reading params (the CLI, config_io) stays torch-free
    from huescale.models import available
    from huescale.models.registry import model_class

    known = list(available())
    for role in ("colorizer", "upscaler", "discriminator", "joint"):
        spec: ModelSpec = getattr(cfg.model, role)
        if role == "upscaler" and spec.name == NO_UPSCALER:
            continue
        if spec.name not in known:
            extra = f" (or {NO_UPSCALER}: no network)" if role == "upscaler" else ""
            raise ConfigError(f"{src}: model.{role}.name: unknown model {spec.name!r}; known models: "
                              f"{', '.join(known)}{extra} (huescale.models.available())")
        cls = model_class(spec.name)
        try:
            sig = inspect.signature(cls) if cls is not None else None
        except (TypeError, ValueError):  # no introspectable signature: left to the model itself
            sig = None
        if sig is None:
            continue
        params = sig.parameters
        if any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values()):
            continue
        allowed = [n for n, q in params.items() if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]
        bad = [k for k in spec.kwargs if k not in allowed]
        if bad:
            raise ConfigError(f"{src}: model.{role}.kwargs.{bad[0]}: model {spec.name!r} takes no parameter "
                              f"{bad[0]!r}; its parameters: {', '.join(allowed) or 'none'}")
        missing = [n for n, q in params.items() if q.default is q.empty and n in allowed and n not in spec.kwargs]
        if missing:
            raise ConfigError(f"{src}: model.{role}.kwargs: model {spec.name!r} needs {', '.join(missing)}")


def _validate_losses(cfg: Config, src: str) -> None:
    """``train.gan_mode`` is one of the GAN losses' modes, and every loss name of every phase's ``losses`` is
    registered (:func:`huescale.training.losses.available`, ``gan`` included: it is the adversarial term)."""
    # lazy: models and training.losses import torch; reading params (the CLI, config_io) stays torch-free
    from huescale.training.gan_loss import GAN_MODES
    from huescale.training.losses import available

    if cfg.train.gan_mode not in GAN_MODES:
        raise ConfigError(f"{src}: train.gan_mode must be one of {', '.join(GAN_MODES)}, got {cfg.train.gan_mode!r}")
    known = list(available())
    for name, o in _phases(cfg):
        for loss in o.losses:
            if loss not in known:
                raise ConfigError(f"{src}: {name}.losses.{loss}: unknown loss; known losses: {', '.join(known)} "
                                  "(huescale losses lists them)")


def _validate_metrics(cfg: Config, src: str) -> None:
    """Every name of ``evaluate.metrics`` is in the metric table (:data:`huescale.metrics.METRICS`), once."""
    names = cfg.evaluate.metrics
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"{src}: evaluate.metrics: unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{src}: evaluate.metrics lists a metric twice: {names}")


def _validate_sources(d: DataConfig, src: str) -> None:
    """Checks of the source sub-sections, the test source and the split map ."""
    if d.imagenette.variant not in ("320", "full", "160"):
        raise ConfigError(f"{src}: data.imagenette.variant must be 320, full or 160, got {d.imagenette.variant!r}")
    bad = [a for a in d.coco.archives if a not in ("train2017", "val2017")]
    if bad or not d.coco.archives:
        raise ConfigError(f"{src}: data.coco.archives must list train2017 and/or val2017, got {d.coco.archives}")
    for name, h in (("data", d), ("data.test_source", d.test_source)):
        if h.source == "hf" and not d.hf.name:
            raise ConfigError(f"{src}: {name}.source=hf needs data.hf.name (a hub name, parquet or imagefolder)")
    used = {d.source, d.test_source.source}
    if "imagenette" in used and d.imagenette.url and not d.imagenette.md5:
        raise ConfigError(f"{src}: data.imagenette.url is set without data.imagenette.md5: set data.imagenette.md5 "
                          "to the archive's md5 (md5sum FILE on a good copy); an archive that cannot be verified "
                          "is never installed")
    if "voc" in used and not d.voc.md5:
        raise ConfigError(f"{src}: data.voc.md5 is empty: set it to the md5 of the archive at data.voc.url "
                          "(the official one is 6cd6e144f989b92b3379bac3b3de84fd)")
    t = d.test_source
    if t.source != "none" and t.source not in SOURCES:
        raise ConfigError(f"{src}: data.test_source.source must be none or one of {', '.join(SOURCES)}, "
                          f"got {t.source!r}")
    if t.source == "folder" and not t.folders:
        raise ConfigError(f"{src}: data.test_source.source=folder needs data.test_source.folders")
    if t.n_images < 0 or d.fetch_margin < 0:
        raise ConfigError(f"{src}: data.test_source.n_images and data.fetch_margin must be >= 0")
    if d.holdout_images < 1:
        raise ConfigError(f"{src}: data.holdout_images must be >= 1, got {d.holdout_images}")
    training = [Path(f).expanduser().resolve() for f in d.folders + d.test_source.folders]
    for name, folder in d.holdout.items():
        held = Path(folder).expanduser().resolve()
        clash = next((t for t in training if t == held or t in held.parents or held in t.parents), None)
        if clash is not None:
            raise ConfigError(f"{src}: data.holdout.{name} ({folder}) overlaps the training folder {clash}: "
                              "held-out photographs must be ones training never reads")
    for prefix, split in d.split_map.items():
        if split not in ("train", "val", "test"):
            raise ConfigError(f"{src}: data.split_map.{prefix} must be train, val or test, got {split!r}")
    if d.splits.get("test", 0) == 0 and t.source == "none" and "test" not in d.split_map.values():
        raise ConfigError(f"{src}: data.splits.test is 0 but no test set is given: set data.test_source "
                          "or map a key prefix to test in data.split_map")
