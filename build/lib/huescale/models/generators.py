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
    """pix2pix U-Net colorizer (Brescia et al.; pix2pix, Isola et al. 2017).

    Encoder: ``depth`` steps of conv3x3-BN-ReLU then 2x2 max-pooling (Brescia et al.:
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


def _pixel_shuffle_upsampler(channels: int, scale: int) -> nn.Sequential:
    """``log2(scale)`` x [conv3x3 (c -> 4c), PixelShuffle(2), PReLU].

    SRGAN (Ledig et al. 2017; Brescia et al., Singh et al.).
    """
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"scale factor must be a power of 2 >= 2, got {scale}")
    layers: list[nn.Module] = []
    for _ in range(scale.bit_length() - 1):
        layers += [nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels)]
    return nn.Sequential(*layers)


class _PlainResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity; resolution and channels kept (SRResNet block, Brescia et al.)."""

    def __init__(self, c: int, act: nn.Module | None = None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                  act if act is not None else nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ResDown(nn.Module):
    """Singh et al. encoder block: conv3x3-BN-LReLU, conv4x4/2-BN; skip conv4x4/2-BN; sum, LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c_out, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class _ResUp(nn.Module):
    """The decoder mirror of :class:`_ResDown`: transposed conv4x4/2-BN-ReLU, conv3x3-BN; skip transposed
    conv4x4/2-BN; sum, ReLU, optional dropout (Singh et al.: ReLU in the decoder, dropout 0.5)."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.body(x) + self.skip(x)))


@register("resunet")
class ResidualUNet(nn.Module):
    """ResidualUNet colorizer (Singh et al., section 3.2 and "ResUNet + L1 (upsampling)").

    ``n_blocks`` (6 in Singh et al.) residual down blocks in the encoder (each:
    conv3x3-BN-LeakyReLU(0.2), conv4x4 stride 2-BN, with a conv4x4 stride 2-BN
    skip) and as many residual up blocks in the decoder (ReLU; dropout
    ``dropout`` = 0.5 in the three blocks after the first), U-Net skip
    concatenations, filters doubling from ``base_channels`` up to 8x (the
    standard U-Net progression), then conv3x3 to ``out_channels`` and tanh.

    ``upsample=True`` is Singh et al.'s end-to-end variant: six resolution-keeping
    residual blocks on the decoder features, a PixelShuffle + PReLU upsampling
    block (x ``scale``), a conv to ``out_channels``, and a skip connection from
    the ResidualUNet output (bicubic-upscaled) to the final output, clamped to
    [-1, 1]. The residual branch's last conv starts at zero, so an untrained
    model outputs the upscaled ResidualUNet prediction. (Singh et al. says the six
    blocks "follow the same architecture" as the encoder's; blocks that halve
    the resolution cannot precede an x4 upsampling to 4x, so huescale uses the
    SRResNet block of Brescia et al. here.)

    Input ``N x in_channels x H x W`` float in [-1, 1] (normalised L), H and W
    multiples of ``2**n_blocks`` (64 for 6 blocks: the bottleneck is 1 x 1);
    output ``N x out_channels x H x W`` in [-1, 1] (normalised ab), or
    ``N x out_channels x (scale*H) x (scale*W)`` with ``upsample=True``.
    Batch norm at the 1 x 1 bottleneck needs a training batch of 2 or more.

    Raises:
        ValueError: bad sizes at construction or a spatial size not divisible by ``2**n_blocks``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base_channels: int = 64, n_blocks: int = 6,
                 dropout: float = 0.5, upsample: bool = False, scale: int = 4, n_up_blocks: int = 6):
        super().__init__()
        if n_blocks < 1 or base_channels < 1:
            raise ValueError(f"resunet: n_blocks and base_channels must be >= 1, got {n_blocks}, {base_channels}")
        self.n_blocks, self.upsample, self.scale = n_blocks, upsample, scale if upsample else 1
        chans = [base_channels * min(2**i, 8) for i in range(n_blocks)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in chans:
            self.down.append(_ResDown(c_prev, c))
            c_prev = c
        self.up = nn.ModuleList()
        outs = list(reversed([base_channels] + chans[:-1]))  # decoder outputs mirror the encoder inputs
        for i, c in enumerate(outs):
            c_in = chans[-1] if i == 0 else 2 * outs[i - 1]  # after the first, input = up ++ encoder skip
            self.up.append(_ResUp(c_in, c, dropout if 1 <= i <= 3 else 0.0))
        # the last up block has no encoder skip left: its output has base_channels channels
        self.head_feat = nn.Sequential(nn.Conv2d(base_channels, base_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Conv2d(base_channels, out_channels, 3, padding=1), nn.Tanh())
        if upsample:
            self.up_body = nn.Sequential(*[_PlainResBlock(base_channels) for _ in range(n_up_blocks)])
            self.up_shuffle = _pixel_shuffle_upsampler(base_channels, scale)
            self.up_out = nn.Conv2d(base_channels, out_channels, 3, padding=1)
            nn.init.zeros_(self.up_out.weight)
            nn.init.zeros_(self.up_out.bias)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder-decoder features ``N x base_channels x H x W`` (after the first head conv)."""
        m = 2**self.n_blocks
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"{type(self).__name__}: input size {tuple(x.shape[-2:])} must be a multiple of {m}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up block directly
        for block in self.up:
            x = block(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        return self.head_feat(x)

    def _upscale(self, base: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Bicubic(base) + the PixelShuffle residual branch on ``feats``, clamped to [-1, 1]."""
        size = (base.shape[-2] * self.scale, base.shape[-1] * self.scale)
        skip = nn.functional.interpolate(base, size=size, mode="bicubic", align_corners=False)
        return (skip + self.up_out(self.up_shuffle(self.up_body(feats)))).clamp(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._features(x)
        base = self.head(feats)
        return self._upscale(base, feats) if self.upsample else base


@register("residual")
class ResidualGenerator(nn.Module):
    """Residual generator without downsampling (Singh et al., "Is downsampling necessary?").

    conv3x3 (``in_channels`` -> ``features``)-ReLU, ``n_blocks`` (8 in Singh et al.)
    residual blocks of two conv3x3 (stride 1, same padding; ReLU after the
    first) with an identity skip and batch norm at the end of each block,
    then the network input concatenated to the features (Singh et al.'s "extra
    skip-connection" from input to output), conv3x3 to ``out_channels`` and
    tanh. Resolution is kept throughout; 64 filters per layer in Singh et al..

    Input ``N x in_channels x H x W`` float in [-1, 1] (any H, W); output
    ``N x out_channels x H x W`` in [-1, 1].
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, features: int = 64, n_blocks: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "body": nn.Sequential(nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(features, features, 3, padding=1)),
            "bn": nn.BatchNorm2d(features)}) for _ in range(n_blocks))
        self.head = nn.Sequential(nn.Conv2d(features + in_channels, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for b in self.blocks:
            h = b["bn"](h + b["body"](h))
        return self.head(torch.cat([h, x], 1))


@register("encdec32")
class EncoderDecoder32(nn.Module):
    """Strided encoder-decoder colorizer of the CIFAR-10 cGAN report (CIFAR-10, 32 x 32).

    A conv1x1 stride 1 (``base_channels``), then ``n_down`` conv2x2 stride 2
    (4 in the CIFAR-10 cGAN report: 32 -> 2, reaching 2 x 2 x 512; filters double up to 512),
    each with batch norm and LeakyReLU(0.2); the decoder mirrors it with
    transposed conv2x2 stride 2 + BN + LeakyReLU(0.2), concatenating encoder
    layer i with decoder layer n-i, dropout 0.5 in the first two expansive
    layers; a final conv1x1 to ``out_channels`` and tanh. No pooling.

    It is fully convolutional: it runs at any H, W that are multiples of
    ``2**n_down``. At 64 px the report's ``n_down=4`` ends at 4 x 4 x 512;
    ``n_down=5`` reaches the report's 2 x 2 x 512 bottleneck at 64 px.

    Input ``N x in_channels x H x W`` float in [-1, 1]; output ``N x
    out_channels x H x W`` in [-1, 1] (the CIFAR-10 cGAN report predicts 3 channels; huescale's
    colorizers predict normalised ab, 2 channels).

    Raises:
        ValueError: at forward time for a size not divisible by ``2**n_down``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base_channels: int = 64, n_down: int = 4,
                 max_channels: int = 512, dropout: float = 0.5):
        super().__init__()
        self.n_down = n_down

        def act_bn(c: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]

        self.stem = nn.Sequential(nn.Conv2d(in_channels, base_channels, 1, bias=False), *act_bn(base_channels))
        chans = [min(base_channels * 2**(i + 1), max_channels) for i in range(n_down)]
        self.down = nn.ModuleList()
        c_prev = base_channels
        for c in chans:
            self.down.append(nn.Sequential(nn.Conv2d(c_prev, c, 2, stride=2, bias=False), *act_bn(c)))
            c_prev = c
        skips = [base_channels] + chans[:-1]  # features at each resolution, reused by the decoder
        self.up = nn.ModuleList()
        for i, c in enumerate(reversed(skips)):
            self.up.append(nn.Sequential(nn.ConvTranspose2d(c_prev, c, 2, stride=2, bias=False), *act_bn(c),
                                         nn.Dropout(dropout) if i < 2 and dropout > 0 else nn.Identity()))
            c_prev = 2 * c
        self.head = nn.Sequential(nn.Conv2d(c_prev, out_channels, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = 2**self.n_down
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"encdec32: input size {tuple(x.shape[-2:])} must be a multiple of {m}")
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], 1)
        return self.head(x)


@register("joint")
class JointGenerator(ResidualUNet):
    """One generator 64 L -> 256 Lab: Frison et al. 2025's single-step GAN with
    Singh et al.'s ResidualUNet + PixelShuffle upsampling block.

    A :class:`ResidualUNet` with ``out_channels=3`` and ``upsample=True``: the
    ResidualUNet predicts normalised Lab at the input size, a residual branch
    (six residual blocks, PixelShuffle + PReLU x ``scale``) adds detail to its
    bicubic upscale. Channel 0 of the 64-px prediction is replaced by the input
    L before the upscale, so an untrained model returns bicubic(L) and
    bicubic(predicted ab).

    CONTRACT (the inference CLI relies on it): ``forward(L)`` takes normalised L
    ``N x 1 x h x w`` float in [-1, 1] (``L/50 - 1``), h and w multiples of
    ``2**n_blocks``, and returns ``N x 3 x (4h) x (4w)`` normalised Lab in
    [-1, 1] (channel 0 = L/50 - 1, channels 1-2 = ab/110); attribute ``scale = 4``.
    """

    def __init__(self, base_channels: int = 64, n_blocks: int = 6, dropout: float = 0.5, n_up_blocks: int = 6):
        super().__init__(in_channels=1, out_channels=3, base_channels=base_channels, n_blocks=n_blocks,
                         dropout=dropout, upsample=True, scale=4, n_up_blocks=n_up_blocks)
        self.scale = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"joint: expected normalised L of shape N x 1 x h x w, got {tuple(x.shape)}")
        feats = self._features(x)
        base = torch.cat([x, self.head(feats)[:, 1:]], 1)  # keep the known L at the input size
        return self._upscale(base, feats)
