"""Stage ``train``: adversarial training of the colorizer from its pre-trained weights (pix2pix, Isola et
al. 2017, as Brescia et al. and Singh et al. train it), with the one recipe (:mod:`huescale.training.recipe`)."""

from __future__ import annotations

from huescale import tracking
from huescale.config import Config
from huescale.data.store import PairStore
from huescale.pipeline.stages import COLORIZER, COLORIZER_PRE, DISCRIMINATOR, METRICS, PAIRS, STATE
from huescale.pipeline.stages.runner import device
from huescale.training import phases


def run(cfg: Config) -> dict:
    """Train G against D on ``data/pairs`` (tier 64) with :func:`huescale.training.phases.train_phase`; writes
    ``models/colorizer.pt`` (best validation, calibrated), ``models/discriminator.pt`` and ``metrics/train.csv``.

    Raises:
        huescale.training.checkpoint.CheckpointError: the pre-trained colorizer is missing (``train.init: pretrained``).
        huescale.training.trainer.TrainingDiverged: a non-finite loss.
    """
    dev = device(cfg)
    init = COLORIZER_PRE if cfg.train.init == "pretrained" else None  # scratch: Singh et al. rows 1-6
    result, out = phases.train_phase(cfg, "colorizer", "adversarial", PairStore(PAIRS), "train",
                                     phases.PhasePaths(COLORIZER, METRICS / "train.csv", STATE / "train.pt",
                                                       DISCRIMINATOR), dev, init=init, resume=cfg.train.resume)
    if result.d_collapse:
        tracking.set_tags({"warning": "discriminator collapse (loss_D ~ 0)"})
    tracking.log_artifact(COLORIZER, "checkpoints")
    return out
