"""Discriminators: they score (condition ++ output) images patch by patch or as a whole."""

from __future__ import annotations

import torch
from torch import nn

from huescale.models.registry import register


@register("patchgan")
class PatchGANDiscriminator(nn.Module):
    """Conditional PatchGAN (pix2pix, Isola et al. 2017; seeds 002 and 004).

    ``n_layers`` strided conv4x4-BN-LeakyReLU(0.2) blocks, then a stride-1
    block and a 1-channel conv; ``n_layers=3`` gives the 70x70 receptive field
    of pix2pix. It sees the condition and the output concatenated (seed 000:
    "the discriminator receives both"), e.g. L ++ ab = 3 channels.

    Input ``N x in_channels x H x W`` float in [-1, 1]; output ``N x 1 x h x w``
    raw logits, one per patch (6 x 6 for a 64 x 64 input with 3 layers).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)
        ]
        c = base_channels
        for i in range(1, n_layers + 1):
            c_next = base_channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(c_next), nn.LeakyReLU(0.2, inplace=True)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
