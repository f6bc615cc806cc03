"""Losses by name, each with its weight: the generator objective of every training phase.

A phase's ``losses`` parameter maps registered names to weights, e.g. the
adversarial phase of pix2pix (Isola et al. 2017) as the source documents train
it (``docs/sources.md``: Brescia et al., Singh et al.: lambda_L1 = 100)::

    train:
      losses: {l1: 100, gan: 1}
      gan_mode: lsgan

Adding a loss is one registered class in a loss module plus a params entry (BasicSR's
pattern: ``@register("name")`` on the class, the weight beside the name in the
config). ``gan`` is the adversarial term; the Trainer computes it with the
discriminator (:class:`huescale.training.gan_loss.GANLoss`). Every other name is a reconstruction term,
built by :func:`build_objective`; unknown names fail there, at start-up, with
the list of known ones.

A loss is an ``nn.Module`` whose ``forward(inp: LossInput)`` returns a scalar
float tensor and whose ``metric`` attribute names the logged value
(``loss_G_<name>``; ``loss_G_L1`` for L1, as pix2pix names it).

The modules: :mod:`~huescale.training.loss_registry` (the base class, ``@register`` and the registry),
:mod:`~huescale.training.colour_losses` (L1, cosine, sRGB L1, ab cross-entropy, colourfulness),
:mod:`~huescale.training.vgg_loss` (VGG content losses), :mod:`~huescale.training.gan_loss` (the GAN term).
This module imports every loss module, in the order their names are registered (the order of
:func:`logged_names`), so the registry questions re-exported here see every loss.
"""

from __future__ import annotations

import torch
from torch import nn

from huescale.training import colour_losses, vgg_loss  # noqa: F401  (register the losses, in this order)
from huescale.training.colour_losses import L1Loss
from huescale.training.loss_registry import (
    _REGISTRY,
    GAN,
    LossContext,
    LossInput,
    aux_needed,
    available,
    check_names,
    logged_names,
    validation_metric,
)

__all__ = ["GeneratorObjective", "aux_needed", "available", "check_names", "logged_names", "validation_metric"]


class GeneratorObjective(nn.Module):
    """The weighted sum of a phase's reconstruction terms (every name of ``losses`` but ``gan``).

    ``total = sum_i w_i * loss_i`` in the order of the mapping; terms with weight 0 are not built,
    except L1, which is always computed and logged as ``loss_G_L1`` (it is also the validation
    metric) and only added when its weight is > 0.

    Call ``objective(x, out, target, aux)`` -> dict of scalar tensors: each term's unweighted
    value under its ``metric`` name, and ``total`` (the weighted sum; None-free: at least one term).

    Args:
        losses: name -> weight, e.g. ``{"l1": 100, "gan": 1}`` (``gan`` is skipped here).
        context: the task and loss options.

    Raises:
        ValueError: an unknown name, a negative weight, or no term at all (names the known losses).
        FileNotFoundError: weights of a VGG loss missing (at construction, so before any step).
    """

    def __init__(self, losses: dict[str, float], context: LossContext, where: str = "losses"):
        super().__init__()
        check_names(losses, where)
        self.task = context.task
        self.weights = {n: float(w) for n, w in losses.items() if n != GAN and w > 0}
        if not self.weights:
            raise ValueError(f"{where}: no reconstruction loss with a weight > 0 (e.g. l1: 1); "
                             f"known losses: {', '.join(available())}")
        self.terms = nn.ModuleDict({n: _REGISTRY[n](context) for n in self.weights})
        self.monitor = L1Loss(context)

    def forward(self, x: torch.Tensor, out: torch.Tensor, target: torch.Tensor,
                aux: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        inp = LossInput(x, out.float(), target.float(), self.task, aux or {})
        values: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for name, loss in self.terms.items():
            v = loss(inp)
            values[loss.metric] = v
            total = self.weights[name] * v if total is None else total + self.weights[name] * v
        if L1Loss.metric not in values:
            values[L1Loss.metric] = self.monitor(inp).detach()
        values["total"] = total  # type: ignore[assignment]
        return values
