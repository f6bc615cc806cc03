"""Stage ``pretrain``: L1 pre-training of the colorizer (Singh et al.) and the x4 upscaler of L
(Frison et al. 2025), each with the one recipe (:mod:`huescale.recipe`)."""

from __future__ import annotations

from huescale.config import Config
from huescale.stages import COLORIZER_PRE, METRICS, PAIRS, STATE, UPSCALER


def run(cfg: Config) -> dict:
    """Train both generators on ``data/pairs``; writes ``models/colorizer_pretrained.pt``, ``models/upscaler.pt``
    and their per-epoch CSVs; a colorizer with several decodings gets one chosen on validation
    (:mod:`huescale.calibrate`).

    Raises:
        ValueError / FileNotFoundError: a bad loss name or missing VGG weights, in any phase (checked first).
    """
    from huescale import calibrate, recipe, tracking
    from huescale.data.store import PairStore
    from huescale.stages.runner import device

    recipe.check(cfg)  # the train stage's losses too: a typo fails here, not after pre-training
    dev, store, out = device(cfg), PairStore(PAIRS), {}
    for role, best in (("colorizer", COLORIZER_PRE), ("upscaler", UPSCALER)):
        name = f"pretrain_{role}"
        result = recipe.run_phase(recipe.build(cfg, role, "pretrain", dev), store, name, best, METRICS / f"{name}.csv",
                                  STATE / f"{name}.pt", dev)
        out.update(result.figures(role))
        if role == "colorizer":  # a colorizer with several decodings (colornet) picks one on validation
            out.update(calibrate.calibrate_phase(cfg, best, store, name, dev))
        tracking.log_artifact(best, "checkpoints")
    return out
