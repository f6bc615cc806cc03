"""64 gray -> 256 colour pipelines compared by the seeds."""

from __future__ import annotations

import torch
from torch import nn

from huescale.resize import imresize


class TwoStepPipeline(nn.Module):
    """Colorize at 64, upscale L with the upscaler, upscale ab with bicubic (seed 000_6ebeceacfbce2423.txt).

    "Idea for upscaling: learn to upscale the L channel, and use bicubic
    interpolation for the A and B channels" (seed 000). The ab upscale is the
    MATLAB-compatible bicubic of :mod:`huescale.resize`.

    Args:
        colorizer: L ``N x 1 x h x w`` -> ab ``N x 2 x h x w`` (normalised).
        upscaler: L ``N x 1 x h x w`` -> L ``N x 1 x sh x sw`` (normalised); None keeps bicubic for L too.
        scale: the scale factor (4 in the seeds).

    ``forward(L)`` takes normalised L ``N x 1 x h x w`` in [-1, 1] and returns
    ``(L_hr, ab_hr)``: ``N x 1 x sh x sw`` and ``N x 2 x sh x sw``, in [-1, 1].
    """

    def __init__(self, colorizer: nn.Module | None, upscaler: nn.Module | None, scale: int = 4):
        super().__init__()
        self.colorizer, self.upscaler, self.scale = colorizer, upscaler, scale

    def forward(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = (L.shape[-2] * self.scale, L.shape[-1] * self.scale)
        if self.colorizer is not None:
            ab = self.colorizer(L)
        else:  # the gray baseline: ab = 0
            ab = torch.zeros(L.shape[0], 2, *L.shape[-2:], device=L.device, dtype=L.dtype)
        L_hr = self.upscaler(L) if self.upscaler is not None else imresize(L, size)
        return L_hr.clamp(-1, 1), imresize(ab, size).clamp(-1, 1)


class JointPipeline(nn.Module):
    """One generator 64 L -> 256 Lab, the single-step GAN of seed 000_6ebeceacfbce2423.txt
    (architecture: seed 004_8015dae742fd526e.txt's ResidualUNet + PixelShuffle upsampling, registry ``joint``).

    Args:
        generator: normalised L ``N x 1 x h x w`` -> normalised Lab ``N x 3 x (s*h) x (s*w)``;
            its ``scale`` attribute (4) is the scale factor.

    ``forward(L)`` takes normalised L ``N x 1 x h x w`` in [-1, 1] and returns
    ``(L_hr, ab_hr)``: ``N x 1 x sh x sw`` and ``N x 2 x sh x sw``, in [-1, 1],
    exactly like :class:`TwoStepPipeline`.
    """

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self.scale = int(getattr(generator, "scale", 4))

    def forward(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = self.generator(L).clamp(-1, 1)
        return lab[:, :1], lab[:, 1:]
