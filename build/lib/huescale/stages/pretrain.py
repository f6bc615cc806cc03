"""Stage ``pretrain``: L1 pre-training of the colorizer (Singh et al.) and the x4 upscaler of L
(Frison et al. 2025), each with the one recipe (:mod:`huescale.recipe`). A colorizer with a pretrained
encoder (``semantic``) trains in two phases: the decoder on the cached features of the frozen encoder
(``pretrain.colorizer``, ``data/features``), then the whole network (``pretrain.finetune``)."""

from __future__ import annotations

from huescale.config import Config
from huescale.stages import COLORIZER_FROZEN, COLORIZER_PRE, FEATURES, METRICS, PAIRS, STATE, UPSCALER


def run(cfg: Config) -> dict:
    """Train both generators on ``data/pairs``; writes ``models/colorizer_pretrained.pt``, ``models/upscaler.pt``
    and their per-epoch CSVs; a colorizer with several decodings gets one chosen on validation
    (:mod:`huescale.calibrate`).

    Raises:
        ValueError / FileNotFoundError: a bad loss name or missing VGG weights, in any phase (checked first);
            a feature cache of another encoder (re-run the features stage).
    """
    from huescale import calibrate, recipe, tracking
    from huescale.data.features import has_encoder
    from huescale.data.store import PairStore
    from huescale.stages.runner import device
    from huescale.train import write_history_csv

    recipe.check(cfg)  # the train stage's losses too: a typo fails here, not after pre-training
    dev, store, out = device(cfg), PairStore(PAIRS), {}
    for role, best in (("colorizer", COLORIZER_PRE), ("upscaler", UPSCALER)):
        name = f"pretrain_{role}"
        rec = recipe.build(cfg, role, "pretrain", dev)
        finetune = role == "colorizer" and has_encoder(rec.netG) and cfg.pretrain.finetune.epochs > 0
        first = COLORIZER_FROZEN if finetune else best
        result = recipe.run_phase(rec, store, name, first, METRICS / f"{name}.csv", STATE / f"{name}.pt", dev,
                                  features=FEATURES)
        out.update(result.figures(role))
        if finetune:  # the whole network, from the frozen phase's best weights
            result = recipe.run_phase(recipe.build(cfg, role, "finetune", dev, init=first), store, "finetune_colorizer",
                                      best, METRICS / "finetune_colorizer.csv", STATE / "finetune_colorizer.pt", dev)
            out.update(result.figures("finetune"))
        elif role == "colorizer":  # no fine-tuning phase: an empty history (the stage's declared plot)
            write_history_csv([], METRICS / "finetune_colorizer.csv")
        if role == "colorizer":  # a colorizer with several decodings (colornet) picks one on validation
            out.update(calibrate.calibrate_phase(cfg, best, store, name, dev))
        tracking.log_artifact(best, "checkpoints")
    return out
