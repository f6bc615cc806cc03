"""Colorizers: networks that map normalised L (1 channel) to normalised ab (2 channels)."""

from __future__ import annotations

import torch
from torch import nn

from huescale.models.registry import register


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


@register("unet")
class UNetGenerator(nn.Module):
    """pix2pix U-Net colorizer (seed 002_fb95d62aba45078e.txt; pix2pix, Isola et al. 2017).

    Encoder: ``depth`` steps of conv3x3-BN-ReLU then 2x2 max-pooling (seed 002:
    "3 steps" at 64 px); a bottleneck conv; decoder: 2x2 transposed conv-BN-ReLU,
    concatenation with the encoder feature of the same size (skip connection),
    conv3x3-BN-ReLU; a 1x1 conv and ``tanh``. Channels double per step from
    ``base_channels``.

    Input ``N x in_channels x H x W`` float in [-1, 1] (normalised L); output
    ``N x out_channels x H x W`` in [-1, 1] (normalised ab). H and W must be
    multiples of ``2**depth``.

    Raises:
        ValueError: at construction for depth < 1 or base_channels < 1; at
            forward time for a spatial size not divisible by ``2**depth``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, depth: int = 3,
                 base_channels: int = 64, dropout: float = 0.0):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"unet: depth and base_channels must be >= 1, got {depth}, {base_channels}")
        self.depth = depth
        chans = [base_channels * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in chans:
            self.down.append(_conv_bn_relu(c_prev, c))
            c_prev = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _conv_bn_relu(c_prev, c_prev * 2)
        c_prev *= 2
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for c in reversed(chans):
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(c_prev, c, 2, stride=2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            ))
            self.fuse.append(_conv_bn_relu(2 * c, c))
            c_prev = c
        self.head = nn.Sequential(nn.Conv2d(c_prev, out_channels, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2**self.depth
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"unet: input size {tuple(x.shape[-2:])} must be a multiple of {m}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips)):
            x = fuse(torch.cat([up(x), skip], dim=1))
        return self.head(x)
