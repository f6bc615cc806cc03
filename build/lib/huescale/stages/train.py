"""Stage ``train``: adversarial training of the colorizer from its pre-trained weights (pix2pix, Isola et
al. 2017, as Brescia et al. and Singh et al. train it), with the one recipe (:mod:`huescale.recipe`)."""

from __future__ import annotations

from huescale.config import Config
from huescale.stages import COLORIZER, COLORIZER_PRE, DISCRIMINATOR, METRICS, PAIRS, STATE


def run(cfg: Config) -> dict:
    """Train G against D on ``data/pairs`` (tier 64); writes ``models/colorizer.pt`` (best validation L1),
    ``models/discriminator.pt`` and ``metrics/train.csv``.

    Raises:
        huescale.checkpoint.CheckpointError: the pre-trained colorizer is missing (``train.init: pretrained``).
        huescale.train.TrainingDiverged: a non-finite loss.
    """
    from huescale import calibrate, checkpoint, distributed, recipe, tracking
    from huescale.data.store import PairStore
    from huescale.stages.runner import device

    recipe.check(cfg, ("colorizer",))
    dev = device(cfg)
    init = COLORIZER_PRE if cfg.train.init == "pretrained" else None  # scratch: Singh et al. rows 1-6
    r = recipe.build(cfg, "colorizer", "adversarial", dev, init=init)
    store = PairStore(PAIRS)
    result = recipe.run_phase(r, store, "train", COLORIZER, METRICS / "train.csv", STATE / "train.pt", dev,
                              resume=cfg.train.resume)
    out = result.figures("train")
    if distributed.is_main():
        out.update(calibrate.calibrate_phase(cfg, COLORIZER, store, "train", dev))
        d = cfg.model.discriminator
        checkpoint.save_model(r.netD, d.name, {**d.kwargs, "in_channels": r.task.d_channels(cfg.train.d_conditional)},
                              DISCRIMINATOR)
    if result.d_collapse:
        tracking.set_tags({"warning": "discriminator collapse (loss_D ~ 0)"})
    tracking.log_artifact(COLORIZER, "checkpoints")
    return out
