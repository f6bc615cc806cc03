"""One owner for a training phase: check, build, run, calibrate, save (issue: every path that produces a
colorizer produces a calibrated one).

The ``pretrain`` and ``train`` stages and the ablation rows train their generators only through
:func:`train_phase` (one phase) and :func:`pretrain_generator` (a generator's pre-training: one phase, or for a
colorizer with a pretrained encoder the frozen-encoder phase then the whole network, ``pretrain.finetune``).
After the phase's last epoch a colorizer with several decodings picks one on the validation split
(:mod:`huescale.training.calibrate`) and the adversarial phase's discriminator is saved beside it; every checkpoint is
written with :func:`huescale.training.checkpoint.save_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from huescale.config import Config
from huescale.data.store import PairStore
from huescale.training import calibrate, checkpoint, distributed, recipe


@dataclass(frozen=True)
class PhasePaths:
    """Where a phase writes: ``best`` (the best-validation generator), ``history`` (per-epoch CSV), ``state``
    (resumable state), and ``discriminator`` (an adversarial phase's D, or None: not kept)."""

    best: Path
    history: Path
    state: Path
    discriminator: Path | None = None


def train_phase(cfg: Config, role: str, phase: str, store: PairStore, name: str, paths: PhasePaths,
                device: torch.device | str = "cpu", *, init: str | Path | None = None, resume: bool = True,
                progress: bool = True, features: str | Path | None = None, calibrated: bool = True,
                prefix: str | None = None) -> tuple[recipe.PhaseResult, dict[str, Any]]:
    """Train one phase to its end: check the params, build the networks, run the epochs (resumably), then on the
    main process calibrate a colorizer's decoding (``calibrated``; :func:`huescale.training.calibrate.calibrate_phase`)
    and save the adversarial phase's discriminator (``paths.discriminator``).

    Args:
        cfg: the validated params; role: ``colorizer``, ``upscaler`` or ``joint``; phase: ``pretrain``,
            ``finetune`` or ``adversarial`` (:data:`huescale.training.recipe.PHASES`).
        store: the pair store; name: the phase's name (MLflow prefix, logs), e.g. ``pretrain_colorizer``.
        paths: where the phase writes (:class:`PhasePaths`).
        init: a checkpoint to start the generator from (None: fresh weights, a pretrained encoder's loaded).
        resume, progress, features: as :func:`huescale.training.recipe.run_phase`.
        calibrated: calibrate a colorizer after the phase (False only for a phase another phase continues).
        prefix: the figures' prefix (default ``name``).

    Returns:
        ``(result, figures)``: :class:`huescale.training.recipe.PhaseResult` and ``<prefix>_best_val_l1`` ... plus the
        calibration's figures.

    Raises:
        ValueError: a bad loss name or a loss the model cannot feed (checked before any work);
            ``huescale.training.trainer.TrainingDiverged``: a non-finite loss; FileNotFoundError: missing VGG weights.
    """
    recipe.check(cfg, (role,), adversarial=phase == "adversarial")
    rec = recipe.build(cfg, role, phase, device, init=init)
    result = recipe.run_phase(rec, store, name, paths.best, paths.history, paths.state, device, resume=resume,
                              progress=progress, features=features)
    figures = result.figures(prefix or name)
    if distributed.is_main():
        if role == "colorizer" and calibrated:
            figures.update(calibrate.calibrate_phase(cfg, result.best_path, store, name, device))
        if rec.netD is not None and paths.discriminator is not None:
            d = cfg.model.discriminator
            checkpoint.save_model(rec.netD, d.name, {**d.kwargs, "in_channels": rec.task.d_channels(
                cfg.train.d_conditional)}, paths.discriminator)
    return result, figures


def pretrain_generator(cfg: Config, role: str, store: PairStore, paths: Callable[[str], PhasePaths],
                       device: torch.device | str = "cpu", *, resume: bool = True, progress: bool = True,
                       features: str | Path | None = None,
                       prefixes: dict[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    """A generator's pre-training without D: the ``pretrain.<role>`` phase, and for a colorizer with a pretrained
    encoder (:func:`huescale.training.recipe.finetunes`) the frozen-encoder phase on the cached ``features`` then
    ``pretrain.finetune`` from its best weights; the last phase's colorizer is calibrated.

    Args:
        paths: phase name (``pretrain_<role>``, ``finetune_colorizer``) -> :class:`PhasePaths`.
        prefixes: phase name -> figures prefix (default: the name).

    Returns:
        ``(the final best checkpoint, figures of every phase)``.
    """
    prefixes = prefixes or {}
    first = f"pretrain_{role}"
    more = recipe.finetunes(cfg, role)
    result, figures = train_phase(cfg, role, "pretrain", store, first, paths(first), device, resume=resume,
                                  progress=progress, features=features, calibrated=not more,
                                  prefix=prefixes.get(first))
    if more:
        result, fig = train_phase(cfg, role, "finetune", store, "finetune_colorizer", paths("finetune_colorizer"),
                                  device, init=result.best_path, resume=resume, progress=progress,
                                  prefix=prefixes.get("finetune_colorizer"))
        figures.update(fig)
    return result.best_path, figures
