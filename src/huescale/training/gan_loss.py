"""The adversarial term of a phase's ``losses`` (``gan``): GAN losses on discriminator logits (the Trainer
computes it with the discriminator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan", "hinge")


class GANLoss(nn.Module):
    """GAN loss on discriminator logits, for real or fake targets (the pix2pix ``GANLoss``).

    Modes:
        ``vanilla``: binary cross-entropy with logits (Goodfellow et al. 2014).
        ``lsgan``: least squares, ``(D - 1)^2`` for real and ``D^2`` for fake (Mao et al. 2017;
            Brescia et al. use it for the colorizer's discriminator).
        ``hinge``: ``relu(1 - D)`` / ``relu(1 + D)`` for D; ``-D`` for the generator (Lim & Ye 2017).

    Call ``loss(logits, target_is_real, for_discriminator)``; logits are any
    shape (``N x 1 x h x w`` for PatchGAN), the result is a scalar float tensor.

    Raises:
        ValueError: for an unknown mode.
    """

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss {mode!r}; use one of {', '.join(GAN_MODES)}")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        logits = logits.float()
        if self.mode == "vanilla":
            target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.mode == "lsgan":
            return (logits - 1).pow(2).mean() if target_is_real else logits.pow(2).mean()
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1 - logits).mean() if target_is_real else F.relu(1 + logits).mean()
