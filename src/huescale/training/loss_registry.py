"""The loss registry: what a reconstruction loss is (:class:`Loss`, :class:`LossInput`, :class:`LossContext`),
``@register(name)``, and the questions asked of the registered names.

Ask those questions through :mod:`huescale.training.losses`, which imports every loss module (so every
name is registered, in a fixed order); the loss modules import only this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from huescale.training.tasks import Task

GAN = "gan"  # the adversarial term's name in a ``losses`` mapping (the Trainer owns it)


@dataclass
class LossInput:
    """What every reconstruction loss sees for one batch.

    Attributes:
        x: the network input (condition), e.g. normalised L ``N x 1 x h x w`` in [-1, 1].
        out: the generator output, normalised (ab ``N x 2``, L ``N x 1`` or Lab ``N x 3`` x H x W).
        target: the ground truth, same shape and units as ``out``.
        task: the task (its ``to_rgb`` converts to sRGB for losses in RGB).
        aux: extra generator outputs by name (e.g. ``logits`` of a classification head), else empty.
    """

    x: torch.Tensor
    out: torch.Tensor
    target: torch.Tensor
    task: Task
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    _rgb: tuple[torch.Tensor, torch.Tensor] | None = None

    def rgb(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fake, real)`` sRGB ``N x 3 x H x W`` in [0, 1] through the differentiable kornia conversion
        (computed once per batch, shared by the RGB terms); the gradient reaches the generator."""
        if self._rgb is None:
            x = self.x.float()
            self._rgb = (self.task.to_rgb(x, self.out), self.task.to_rgb(x, self.target))
        return self._rgb


@dataclass(frozen=True)
class LossContext:
    """What building a loss may need beside its weight.

    Attributes:
        task: the phase's task.
        vgg_weights: a VGG weights file for the ``vgg*`` content losses; "" = torchvision's cache
            (``$TORCH_HOME/hub/checkpoints``).
    """

    task: Task
    vgg_weights: str = ""


class Loss(nn.Module):
    """Base class of the registered reconstruction losses: ``forward(LossInput) -> scalar tensor``.

    Class attributes a loss declares (nothing outside this module names a loss):
        metric: the name its value is logged under (history CSV column, MLflow ``<phase>/<metric>``, report curve).
        needs_aux: the generator's auxiliary outputs it reads (checked against the model before training).
        validation: ``"objective"`` when the phase's best epoch must be chosen on the weighted objective rather
            than on validation L1 (a classification loss, whose best colours are not the L1-best ones).
    """

    metric: ClassVar[str] = ""
    needs_aux: ClassVar[tuple[str, ...]] = ()
    validation: ClassVar[str] = "l1"

    def __init__(self, context: LossContext):
        super().__init__()


_REGISTRY: dict[str, Callable[[LossContext], Loss]] = {}


def register(name: str) -> Callable:
    """Class (or factory) decorator: make a loss buildable by ``name`` in a ``losses`` mapping.

    Raises:
        KeyError: ``name`` is already registered (or is ``gan``).
    """

    def deco(cls):
        if name in _REGISTRY or name == GAN:
            raise KeyError(f"loss name {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> dict[str, str]:
    """Every loss name (``gan`` included) -> the first line of its docstring."""
    out = {GAN: "adversarial term: GANLoss(gan_mode) on the discriminator's logits (needs an adversarial phase)"}
    for name, cls in sorted(_REGISTRY.items()):
        out[name] = (cls.__doc__ or "").strip().splitlines()[0]
    return out


def logged_names() -> dict[str, str]:
    """Every value a phase may log (history CSV column) -> what it is, by the registry's names: each registered
    loss's ``metric`` (e.g. ``loss_G_CE`` -> ``ab_ce``), the adversarial terms and the total."""
    out = {"loss_G": "generator total", "loss_G_GAN": GAN, "loss_D": "discriminator",
           "loss_D_real": "discriminator, real", "loss_D_fake": "discriminator, fake"}
    for name, cls in _REGISTRY.items():
        out[getattr(cls, "metric", "") or f"loss_G_{name}"] = name
    return out


def aux_needed(name: str) -> tuple[str, ...]:
    """The generator auxiliary outputs loss ``name`` reads (``()`` for most; ``gan`` and unknown names too)."""
    return tuple(getattr(_REGISTRY.get(name), "needs_aux", ()))


def validation_metric(losses: dict[str, float]) -> str:
    """``"objective"`` if a loss weighted > 0 in ``losses`` declares it (:attr:`Loss.validation`), else ``"l1"``:
    what picks a phase's best epoch."""
    return "objective" if any(getattr(_REGISTRY.get(n), "validation", "l1") == "objective"
                              for n, w in losses.items() if w > 0) else "l1"


def check_names(losses: dict[str, float], where: str) -> None:
    """Fail for an unknown loss name or a negative weight, naming the dotted key and listing the known names.

    Raises:
        ValueError: the message names ``where.<name>``.
    """
    for name, weight in losses.items():
        if name != GAN and name not in _REGISTRY:
            raise ValueError(f"{where}.{name}: unknown loss; known losses: {', '.join(available())}")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"{where}.{name}: the weight must be a number >= 0, got {weight!r}")
