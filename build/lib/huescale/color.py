"""sRGB <-> CIE L*a*b* on any device, and the network normalisation of L and ab.

This is the one place in huescale that converts colour. Lab follows CIE L*a*b*
under D65, the convention of ``skimage.color.rgb2lab``: L in [0, 100], a and b
roughly in [-110, 110]. Networks see the pix2pix normalisation (seed
``Brescia et al.``, pix2pix colorization): ``L / 50 - 1`` and
``ab / 110``, both in [-1, 1].

All functions take and return batched ``N x C x H x W`` tensors; conversion is
done by :mod:`kornia.color`, which is differentiable, so losses can be taken in
RGB through it (the joint model of seed ``Singh et al.``).
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _lab_to_rgb
from kornia.color import rgb_to_lab as _rgb_to_lab

L_SCALE = 50.0
AB_SCALE = 110.0


def _check(x: torch.Tensor, channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected a N x {channels} x H x W tensor, got shape {tuple(x.shape)}")


def uint8_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Convert 8-bit sRGB to float sRGB.

    Args:
        x: ``N x 3 x H x W`` uint8 tensor, values 0..255.

    Returns:
        ``N x 3 x H x W`` float32 tensor in [0, 1] on the same device.

    Raises:
        ValueError: if ``x`` is not uint8 with 3 channels.
    """
    _check(x, 3, "uint8_to_rgb")
    if x.dtype != torch.uint8:
        raise ValueError(f"uint8_to_rgb: expected dtype uint8, got {x.dtype}")
    return x.float().div_(255.0)


def rgb_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise float sRGB in [0, 1] to 8-bit (round half to even, clipped).

    Args:
        x: ``N x 3 x H x W`` float tensor, nominally in [0, 1].

    Returns:
        ``N x 3 x H x W`` uint8 tensor, 0..255.
    """
    _check(x, 3, "rgb_to_uint8")
    return x.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB -> CIE L*a*b* (D65), as ``skimage.color.rgb2lab``.

    Args:
        rgb: ``N x 3 x H x W`` float tensor in [0, 1] (sRGB, gamma-encoded).

    Returns:
        ``N x 3 x H x W`` float tensor: L in [0, 100], a/b roughly in [-110, 110].
    """
    _check(rgb, 3, "rgb_to_lab")
    return _rgb_to_lab(rgb.float())


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB in [0, 1], out-of-gamut values clipped.

    Args:
        lab: ``N x 3 x H x W`` float tensor, L in [0, 100], a/b unscaled.

    Returns:
        ``N x 3 x H x W`` float tensor in [0, 1]. Differentiable.
    """
    _check(lab, 3, "lab_to_rgb")
    return _lab_to_rgb(lab.float(), clip=True)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input in [-1, 1] (``L / 50 - 1``, pix2pix)."""
    return L / L_SCALE - 1.0


def denormalize_l(x: torch.Tensor) -> torch.Tensor:
    """Network L in [-1, 1] -> L in [0, 100] (clamped)."""
    return ((x + 1.0) * L_SCALE).clamp(0.0, 100.0)


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in about [-110, 110] -> [-1, 1] (``ab / 110``, pix2pix)."""
    return ab / AB_SCALE


def denormalize_ab(x: torch.Tensor) -> torch.Tensor:
    """Network ab in [-1, 1] -> ab in [-110, 110]."""
    return x.clamp(-1.0, 1.0) * AB_SCALE


def uint8_to_lab_normalized(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit sRGB batch -> normalised (L, ab), the form every network sees.

    Args:
        x: ``N x 3 x H x W`` uint8 tensor (any device).

    Returns:
        ``(L, ab)``: ``N x 1 x H x W`` and ``N x 2 x H x W`` float32 tensors in [-1, 1].
    """
    lab = rgb_to_lab(uint8_to_rgb(x))
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def lab_normalized_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised (L, ab) -> sRGB in [0, 1]; the inverse of :func:`uint8_to_lab_normalized`.

    Args:
        L: ``N x 1 x H x W`` float tensor in [-1, 1].
        ab: ``N x 2 x H x W`` float tensor in [-1, 1], same N, H, W as ``L``.

    Returns:
        ``N x 3 x H x W`` float tensor in [0, 1] (differentiable).

    Raises:
        ValueError: if the shapes do not match.
    """
    _check(L, 1, "lab_normalized_to_rgb(L)")
    _check(ab, 2, "lab_normalized_to_rgb(ab)")
    if L.shape[0] != ab.shape[0] or L.shape[-2:] != ab.shape[-2:]:
        raise ValueError(f"L {tuple(L.shape)} and ab {tuple(ab.shape)} differ in batch or size")
    return lab_to_rgb(torch.cat([denormalize_l(L), denormalize_ab(ab)], dim=1))


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> ITU-R BT.601 luma Y in [16, 235] (MATLAB ``rgb2ycbcr``).

    The convention of published super-resolution tables (PSNR/SSIM on Y).

    Args:
        rgb: ``N x 3 x H x W`` float tensor in [0, 1].

    Returns:
        ``N x 1 x H x W`` float64 tensor in [16, 235] (8-bit scale).
    """
    _check(rgb, 3, "rgb_to_y")
    w = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64, device=rgb.device).view(1, 3, 1, 1)
    return (rgb.double() * w).sum(dim=1, keepdim=True) + 16.0
