"""x4 upscalers of the L channel: LR ``N x 1 x h x w`` -> HR ``N x 1 x (s*h) x (s*w)``."""

from __future__ import annotations

import torch
from torch import nn

from huescale.models.registry import register
from huescale.resize import imresize


@register("espcn")
class ESPCN(nn.Module):
    """ESPCN sub-pixel upscaler (seed 000_6ebeceacfbce2423.txt; Shi et al. 2016).

    conv5x5(64)-tanh, conv3x3(32)-tanh, conv3x3(channels * scale^2), PixelShuffle.
    With ``residual=True`` (huescale's default; global residual learning as in
    VDSR, Kim et al. 2016) the network predicts the difference to a
    MATLAB-bicubic upscale of its input, and its last layer starts at zero, so
    an untrained model equals bicubic and training can only start from there.

    Input ``N x channels x h x w`` float in [-1, 1] (normalised L); output
    ``N x channels x (scale*h) x (scale*w)``, same range (not clamped).

    Raises:
        ValueError: for a scale factor below 2.
    """

    def __init__(self, scale: int = 4, channels: int = 1, features: int = 64, residual: bool = True):
        super().__init__()
        if scale < 2:
            raise ValueError(f"espcn: scale factor must be >= 2, got {scale}")
        self.scale = scale
        self.residual = residual
        self.body = nn.Sequential(
            nn.Conv2d(channels, features, 5, padding=2), nn.Tanh(),
            nn.Conv2d(features, features // 2, 3, padding=1), nn.Tanh(),
            nn.Conv2d(features // 2, channels * scale**2, 3, padding=1),
            nn.PixelShuffle(scale),
        )
        if residual:
            nn.init.zeros_(self.body[4].weight)
            nn.init.zeros_(self.body[4].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.residual:
            out = out + imresize(x, (x.shape[-2] * self.scale, x.shape[-1] * self.scale))
        return out
