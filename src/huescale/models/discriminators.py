"""Discriminators: they score (condition ++ output) images patch by patch or as a whole."""

from __future__ import annotations

import torch
from torch import nn

from huescale.models.registry import register


@register("patchgan")
class PatchGANDiscriminator(nn.Module):
    """Conditional PatchGAN (pix2pix, Isola et al. 2017; Brescia et al., Singh et al.).

    ``n_layers`` strided conv4x4-BN-LeakyReLU(0.2) blocks, then a stride-1
    block and a 1-channel conv; ``n_layers=3`` gives the 70x70 receptive field
    of pix2pix. It sees the condition and the output concatenated (Frison et al. 2025:
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


@register("srgan")
class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator (Brescia et al., section 3.2.1; Ledig et al. 2017).

    conv3x3-LeakyReLU(0.2), then 7 conv3x3-BN-LeakyReLU blocks alternating
    stride 2 and 1 with filters doubling from ``base_channels`` to 8x (64 ->
    512 in SRGAN), a ``pool`` x ``pool`` adaptive average pool (huescale's
    addition, so the dense layer's size does not depend on the input size:
    at 256 px SRGAN's flatten would feed 131,072 features to the 1024 units),
    dense 1024, LeakyReLU(0.2), dense 1.

    Brescia et al. ends with a sigmoid; huescale returns the logit and lets
    :class:`huescale.training.gan_loss.GANLoss` apply the sigmoid (``vanilla`` =
    binary cross-entropy with logits): the same objective, numerically stable
    when the discriminator is confident (log(sigmoid) saturates), and the
    same logits also serve the LSGAN and hinge losses.

    Input ``N x in_channels x H x W`` float in [-1, 1] (H, W >= 16); output
    ``N x 1`` raw logits.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 64, dense: int = 1024, pool: int = 4):
        super().__init__()
        c = base_channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        specs = [(c, 2), (2 * c, 1), (2 * c, 2), (4 * c, 1), (4 * c, 2), (8 * c, 1), (8 * c, 2)]
        c_prev = c
        for c_out, stride in specs:
            layers += [nn.Conv2d(c_prev, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c_out
        layers.append(nn.AdaptiveAvgPool2d(pool))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_prev * pool * pool, dense), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("dense128")
class Dense128Discriminator(nn.Module):
    """The conditional discriminator of the CIFAR-10 cGAN report (CIFAR-10 32 x 32): dense-128 head.

    It sees gray ++ colour (condition and output concatenated, the CIFAR-10 cGAN report section
    4.2). ``n_layers`` conv2x2 stride 2 layers (filters doubling from
    ``base_channels``, up to 512), each with batch norm and LeakyReLU(0.2),
    flattened, a dense layer of 128 units (LeakyReLU 0.2) and a dense layer of 1.
    ``image_size`` fixes the flatten size (32 in the CIFAR-10 cGAN report; 64 works too). The
    report's final sigmoid is left to the loss (BCE with logits, see
    :class:`SRGANDiscriminator` for why).

    Input ``N x in_channels x image_size x image_size`` float in [-1, 1];
    output ``N x 1`` raw logits.

    Raises:
        ValueError: an ``image_size`` not divisible by ``2**n_layers``, or a
            forward input of another size.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, n_layers: int = 4, image_size: int = 32):
        super().__init__()
        if image_size % 2**n_layers:
            raise ValueError(f"dense128: image_size {image_size} must be a multiple of 2**n_layers = {2**n_layers}")
        self.image_size = image_size
        layers: list[nn.Module] = []
        c_prev = in_channels
        for i in range(n_layers):
            c = min(base_channels * 2**i, 512)
            layers += [nn.Conv2d(c_prev, c, 2, stride=2, bias=False), nn.BatchNorm2d(c),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        self.features = nn.Sequential(*layers)
        side = image_size // 2**n_layers
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_prev * side * side, 128), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(128, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"dense128: built for {self.image_size} px inputs, got {tuple(x.shape[-2:])}; "
                             "set its image_size kwarg")
        return self.head(self.features(x))
