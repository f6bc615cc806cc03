"""What a network is trained to do: the three tasks and the pair-store tier each reads.

A :class:`Task` turns a uint8 batch from the pair store (on the device) into the
normalised ``(network input, target)`` pair, knows the channel counts of both
(so the discriminator's input width follows from it) and converts an output back
to sRGB for the losses taken in RGB. The normalisation is pix2pix's
(:mod:`huescale.color`): ``L / 50 - 1`` and ``ab / 110``, both in [-1, 1].

- ``COLORIZATION``: L -> ab at 64 px (tier 64), the colorizers (pix2pix, Isola et al. 2017).
- ``UPSCALING``: L of the LR image -> L of the HR image, x4 (tier 256), the upscalers
  (ESPCN, Shi et al. 2016; SRResNet, Ledig et al. 2017).
- ``JOINT``: L at 64 px -> Lab at 256 px (tier 256), the joint generator of
  Frison et al. 2025 (see ``docs/sources.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from huescale.color import lab_normalized_to_rgb, uint8_to_lab_normalized
from huescale.data.store import Tier

Batch = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Task:
    """A training task: how a pair-store batch becomes ``(input, target)`` and back to sRGB.

    Attributes:
        name: ``colorization``, ``upscaling`` or ``joint``.
        tier: the pair-store tier it trains on.
        in_channels: channels of the network input (1: normalised L).
        out_channels: channels of the network output (2: ab, 1: L, 3: Lab).
        prepare: uint8 batch (``N x 3 x h x w`` tensors, 0..255, as :class:`huescale.data.dataset.PairDataset`
            yields) -> ``(input, target)`` float32 tensors in [-1, 1].
        to_rgb: ``(input, output)`` -> sRGB ``N x 3 x H x W`` in [0, 1], differentiable (kornia), for
            losses in RGB.
    """

    name: str
    tier: Tier
    in_channels: int
    out_channels: int
    prepare: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]
    to_rgb: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    @property
    def items(self) -> int:
        """How many tensors of a dataset item are the pair (1 for tier 64, 2 for tier 256); any after them are
        the generator's extra inputs (cached encoder features, :class:`huescale.data.features.FeatureDataset`)."""
        return 1 if self.tier == Tier.T64 else 2

    def split(self, batch: Batch) -> tuple[Batch, dict]:
        """``(pair part, generator keyword arguments)`` of a batch: ``{"features": [...]}`` when the batch carries
        cached encoder features after the pair, else ``{}``."""
        pair, extra = batch[: self.items], batch[self.items:]
        return pair, ({"features": list(extra)} if extra else {})

    def d_channels(self, conditional: bool) -> int:
        """Input channels of this task's discriminator: condition ++ output (pix2pix) or the output alone."""
        return self.in_channels + self.out_channels if conditional else self.out_channels


def _colorization(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gt64,)`` -> (L ``N x 1 x 64 x 64``, ab ``N x 2 x 64 x 64``)."""
    return uint8_to_lab_normalized(batch[0])


def _upscaling(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lq64, gt256)`` -> (L of LR ``N x 1 x 64 x 64``, L of HR ``N x 1 x 256 x 256``)."""
    return uint8_to_lab_normalized(batch[0])[0], uint8_to_lab_normalized(batch[1])[0]


def _joint(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lq64, gt256)`` -> (L of LR ``N x 1 x 64 x 64``, Lab of HR ``N x 3 x 256 x 256``: L, then ab)."""
    L_lr, _ = uint8_to_lab_normalized(batch[0])
    L_hr, ab_hr = uint8_to_lab_normalized(batch[1])
    return L_lr, torch.cat([L_hr, ab_hr], 1)


def _gray_ab(L: torch.Tensor) -> torch.Tensor:
    return torch.zeros(L.shape[0], 2, *L.shape[-2:], device=L.device, dtype=L.dtype)


COLORIZATION = Task("colorization", Tier.T64, 1, 2, _colorization, lambda x, out: lab_normalized_to_rgb(x, out))
UPSCALING = Task("upscaling", Tier.T256, 1, 1, _upscaling, lambda x, out: lab_normalized_to_rgb(out, _gray_ab(out)))
JOINT = Task("joint", Tier.T256, 1, 3, _joint, lambda x, out: lab_normalized_to_rgb(out[:, :1], out[:, 1:]))

TASKS: dict[str, Task] = {t.name: t for t in (COLORIZATION, UPSCALING, JOINT)}
