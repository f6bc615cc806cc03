"""64 gray -> 256 colour pipelines, and the one function that runs any of them to 8-bit sRGB.

A pipeline maps normalised ``(L, ab)`` of an input image (``ab`` may be ignored: a
colorizing pipeline sees only L) to the normalised ``(L, ab)`` of its output, both
in [-1, 1] (``L / 50 - 1``, ``ab / 110``). :func:`render` runs one over uint8
images and returns uint8 sRGB: evaluation, ablation rows, the SR benchmark and
``huescale colorize`` all turn Lab into pixels through :func:`lab_to_uint8`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from huescale.color import lab_normalized_to_rgb, rgb_to_uint8, uint8_to_lab_normalized
from huescale.resize import imresize


def lab_to_uint8(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised ``L`` ``N x 1 x H x W`` and ``ab`` ``N x 2 x H x W`` (clamped to [-1, 1]) -> 8-bit sRGB
    ``N x 3 x H x W`` uint8 (CIE Lab D65 -> sRGB, out-of-gamut clipped, rounded half to even)."""
    return rgb_to_uint8(lab_normalized_to_rgb(L.clamp(-1, 1), ab.clamp(-1, 1)))


class TwoStepPipeline(nn.Module):
    """Colorize at the input size, upscale L with the upscaler and ab with bicubic (Frison et al. 2025).

    "Idea for upscaling: learn to upscale the L channel, and use bicubic interpolation for
    the A and B channels" (Frison et al. 2025, ``docs/sources.md``). The ab upscale is the
    MATLAB-compatible bicubic of :mod:`huescale.resize`. The same object gives the baselines:

    - ``colorizer=None``: the gray baseline (ab = 0), or with ``keep_input_ab`` the input's
      own ab (x4 super-resolution of a colour image: L by the upscaler, ab bicubic);
    - ``upscaler=None``: bicubic L; ``scale=1``: no upscaling (colorization at 64 px).

    Args:
        colorizer: L ``N x 1 x h x w`` -> ab ``N x 2 x h x w`` (normalised), or None.
        upscaler: L ``N x 1 x h x w`` -> L ``N x 1 x sh x sw`` (normalised), or None (bicubic).
        scale: the scale factor (4 in the source documents; 1 = none).
        keep_input_ab: without a colorizer, use the input's ab instead of 0.

    ``forward(L, ab=None)`` takes normalised L (and the input's ab) ``N x {1,2} x h x w`` in [-1, 1]
    and returns ``(L_hr, ab_hr)``: ``N x 1 x sh x sw`` and ``N x 2 x sh x sw``, clamped to [-1, 1].

    Raises:
        ValueError: ``keep_input_ab`` without ``ab`` at forward time.
    """

    def __init__(self, colorizer: nn.Module | None, upscaler: nn.Module | None, scale: int = 4,
                 keep_input_ab: bool = False):
        super().__init__()
        self.colorizer, self.upscaler, self.scale, self.keep_input_ab = colorizer, upscaler, scale, keep_input_ab

    def colorize(self, L: torch.Tensor, ab: torch.Tensor | None = None) -> torch.Tensor:
        """The ab at the input size: the colorizer's, the input's (``keep_input_ab``) or 0 (gray)."""
        if self.colorizer is not None:
            return self.colorizer(L)
        if self.keep_input_ab:
            if ab is None:
                raise ValueError("keep_input_ab: the pipeline needs the input's ab")
            return ab
        return torch.zeros(L.shape[0], 2, *L.shape[-2:], device=L.device, dtype=L.dtype)

    def upscale_l(self, L: torch.Tensor) -> torch.Tensor:
        """L x ``scale``: the upscaler's (not clamped), bicubic without one, unchanged at scale 1."""
        if self.scale == 1:
            return L
        if self.upscaler is not None:
            return self.upscaler(L)
        return imresize(L, (L.shape[-2] * self.scale, L.shape[-1] * self.scale))

    def forward(self, L: torch.Tensor, ab: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ab_lr = self.colorize(L, ab)
        L_hr = self.upscale_l(L)
        if self.scale == 1:
            return L_hr.clamp(-1, 1), ab_lr.clamp(-1, 1)
        return L_hr.clamp(-1, 1), imresize(ab_lr, tuple(L_hr.shape[-2:])).clamp(-1, 1)


class JointPipeline(nn.Module):
    """One generator 64 L -> 256 Lab, the single-step GAN of Frison et al. 2025 (architecture: Singh et
    al.'s ResidualUNet + PixelShuffle upsampling, registry ``joint``).

    Args:
        generator: normalised L ``N x 1 x h x w`` -> normalised Lab ``N x 3 x (s*h) x (s*w)``;
            its ``scale`` attribute (4) is the scale factor.

    ``forward(L, ab=None)`` takes normalised L ``N x 1 x h x w`` in [-1, 1] (``ab`` is ignored) and
    returns ``(L_hr, ab_hr)``: ``N x 1 x sh x sw`` and ``N x 2 x sh x sw``, in [-1, 1], like
    :class:`TwoStepPipeline`.
    """

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self.scale = int(getattr(generator, "scale", 4))

    def forward(self, L: torch.Tensor, ab: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lab = self.generator(L).clamp(-1, 1)
        return lab[:, :1], lab[:, 1:]


@torch.no_grad()
def render(pipeline: nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
           batch_size: int = 32) -> np.ndarray:
    """Run a pipeline over 8-bit images: ``N x h x w x 3`` uint8 sRGB -> ``N x H x W x 3`` uint8 sRGB.

    Each batch is converted to normalised Lab on ``device``, passed through ``pipeline(L, ab)``
    and converted back with :func:`lab_to_uint8`. The pipeline is put in eval mode.

    Args:
        pipeline: a :class:`TwoStepPipeline`, :class:`JointPipeline` or any module with the same contract.
        images: uint8 array, channels last (as the pair store holds them).
        device: where the networks run.
        batch_size: images per forward pass.

    Returns:
        uint8 array, channels last; ``H = s * h`` for a pipeline of scale factor ``s``.
    """
    device = torch.device(device)
    pipeline = pipeline.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).permute(0, 3, 1, 2).to(device)
        L, ab = uint8_to_lab_normalized(x)
        out.append(lab_to_uint8(*pipeline(L, ab)).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


def bicubic_rgb(images: np.ndarray, scale: int, batch_size: int = 32) -> np.ndarray:
    """The x``scale`` bicubic baseline of super-resolution tables: MATLAB-compatible ``imresize`` of the sRGB
    image itself (not of L and ab), ``N x h x w x 3`` uint8 -> ``N x (s*h) x (s*w) x 3`` uint8."""
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).permute(0, 3, 1, 2).float() / 255.0
        size = (x.shape[-2] * scale, x.shape[-1] * scale)
        out.append(rgb_to_uint8(imresize(x, size).clamp(0, 1)).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.uint8)
