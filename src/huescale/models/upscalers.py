"""x4 upscalers of the L channel: LR ``N x 1 x h x w`` -> HR ``N x 1 x (s*h) x (s*w)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from huescale.models.generators import _pixel_shuffle_upsampler, _PlainResBlock
from huescale.models.registry import register
from huescale.resize import imresize


def _bicubic(x: torch.Tensor, scale: int, fn: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    """The x``scale`` bicubic upscale of a residual: ``fn(x)``, or MATLAB's :func:`imresize` when ``fn`` is None."""
    return fn(x) if fn is not None else imresize(x, (x.shape[-2] * scale, x.shape[-1] * scale))


@register("espcn")
class ESPCN(nn.Module):
    """ESPCN sub-pixel upscaler (Frison et al. 2025; Shi et al. 2016).

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

    def forward(self, x: torch.Tensor, bicubic: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``bicubic``: the x``scale`` MATLAB-bicubic upscale of the residual (default :func:`imresize`;
        :mod:`huescale.inference.export` passes its size-independent convolution form)."""
        out = self.body(x)
        if self.residual:
            out = out + _bicubic(x, self.scale, bicubic)
        return out


@register("srresnet")
class SRResNet(nn.Module):
    """SRResNet / SRGAN generator (Brescia et al., section 3.2.1; Ledig et al. 2017).

    conv9x9 (``features``)-PReLU; ``n_blocks`` residual blocks (two conv3x3,
    each followed by batch norm, ReLU between them, identity skip; 16 in
    SRGAN, Brescia et al. does not give the count); an intermediate conv3x3-BN plus
    the global skip; ``log2(scale)`` upsampling blocks ``PReLU(PixelShuffle(
    Conv2D(y)))``; a final conv9x9 to ``channels`` and a sigmoid.

    huescale's range convention: Brescia et al.'s sigmoid output ``s`` in [0, 1] is
    an image in [0, 1]; for the L channel that is ``L / 100``, so the network
    returns ``2 s - 1 = L / 50 - 1``, the normalised L in [-1, 1] that every
    huescale upscaler returns (``2 * sigmoid(z) - 1 == tanh(z / 2)``).

    ``residual=True`` (huescale's option, off by default as in Brescia et al.) adds
    the MATLAB-bicubic upscale of the input inside the sigmoid,
    ``2 sigmoid(z + 2 atanh(bicubic)) - 1``, with the last conv starting at zero:
    an untrained model equals bicubic (as the residual ESPCN) and the output
    stays a sigmoid in range.

    Input ``N x channels x h x w`` float in [-1, 1] (normalised L); output
    ``N x channels x (scale*h) x (scale*w)`` in [-1, 1].

    Raises:
        ValueError: for a scale factor that is not a power of 2.
    """

    def __init__(self, scale: int = 4, channels: int = 1, features: int = 64, n_blocks: int = 16,
                 residual: bool = False):
        super().__init__()

        self.scale = scale
        self.stem = nn.Sequential(nn.Conv2d(channels, features, 9, padding=4), nn.PReLU(features))
        self.body = nn.Sequential(*[_PlainResBlock(features) for _ in range(n_blocks)])
        self.mid = nn.Sequential(nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features))
        self.upsample = _pixel_shuffle_upsampler(features, scale)
        self.out = nn.Conv2d(features, channels, 9, padding=4)
        self.residual = residual
        if residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, bicubic: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``bicubic``: the x``scale`` MATLAB-bicubic upscale of the residual (default :func:`imresize`;
        :mod:`huescale.inference.export` passes its size-independent convolution form)."""
        h = self.stem(x)
        h = h + self.mid(self.body(h))
        z = self.out(self.upsample(h))
        if self.residual:
            base = _bicubic(x, self.scale, bicubic).clamp(-0.999, 0.999)
            z = z + 2.0 * torch.atanh(base)
        return 2.0 * torch.sigmoid(z) - 1.0
