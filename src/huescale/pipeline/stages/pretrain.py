"""Stage ``pretrain``: L1 pre-training of the colorizer (Singh et al.) and the x4 upscaler of L
(Frison et al. 2025), each with the one recipe (:mod:`huescale.training.recipe`). A colorizer with a pretrained
encoder (``semantic``) trains in two phases: the decoder on the cached features of the frozen encoder
(``pretrain.colorizer``, ``data/features``), then the whole network (``pretrain.finetune``)."""

from __future__ import annotations

from huescale import tracking
from huescale.config import Config
from huescale.data.store import PairStore
from huescale.pipeline.stages import COLORIZER_FROZEN, COLORIZER_PRE, FEATURES, METRICS, PAIRS, STATE, UPSCALER
from huescale.pipeline.stages.runner import device
from huescale.training import phases, recipe
from huescale.training.history import write_history_csv


def run(cfg: Config) -> dict:
    """Train both generators on ``data/pairs``; writes ``models/colorizer_pretrained.pt``, ``models/upscaler.pt``
    and their per-epoch CSVs; a colorizer with several decodings gets one chosen on validation
    (:mod:`huescale.training.calibrate`), all through :func:`huescale.training.phases.pretrain_generator`.

    Raises:
        ValueError / FileNotFoundError: a bad loss name or missing VGG weights, in any phase (checked first);
            a feature cache of another encoder (re-run the features stage).
    """
    recipe.check(cfg)  # the train stage's losses too: a typo fails here, not after pre-training
    dev, store, out = device(cfg), PairStore(PAIRS), {}
    finetune = recipe.finetunes(cfg, "colorizer")
    best = {"pretrain_colorizer": COLORIZER_FROZEN if finetune else COLORIZER_PRE,
            "finetune_colorizer": COLORIZER_PRE, "pretrain_upscaler": UPSCALER}

    def paths(name: str) -> phases.PhasePaths:
        return phases.PhasePaths(best[name], METRICS / f"{name}.csv", STATE / f"{name}.pt")

    for role in ("colorizer", "upscaler"):
        final, figures = phases.pretrain_generator(cfg, role, store, paths, dev, features=FEATURES, prefixes={
            f"pretrain_{role}": role, "finetune_colorizer": "finetune"})
        out.update(figures)
        if role == "colorizer" and not finetune:  # no fine-tuning phase: an empty history (the stage's plot)
            write_history_csv([], METRICS / "finetune_colorizer.csv")
        tracking.log_artifact(final, "checkpoints")
    return out
