"""Inference on people's own photographs, any size and aspect (the DDColor recipe).

The colorizer predicts ab on the whole image resized to its training size
(64 x 64); the ab map is resized back with bicubic and merged with the
full-resolution L, which is optionally upscaled x4 by the upscaler.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from huescale.color import lab_normalized_to_rgb, rgb_to_uint8, uint8_to_lab_normalized
from huescale.resize import imresize


class Colorizer:
    """``colorizer(rgb_or_gray uint8 H x W x 3) -> uint8 (s*H) x (s*W) x 3`` colour image.

    Args:
        colorizer: L -> ab network (normalised, N x 1 x 64 x 64 -> N x 2 x 64 x 64).
        upscaler: L -> L x``scale`` network, or None for ``scale == 1``.
        model_size: the colorizer's input side in pixels (64, the size it was trained at).
        scale: output size factor, 1 or the upscaler's factor.
        device: torch device.

    Raises:
        ValueError: ``scale > 1`` without an upscaler.
    """

    def __init__(self, colorizer: nn.Module, upscaler: nn.Module | None, model_size: int = 64, scale: int = 1,
                 device: str | torch.device = "cpu"):
        if scale > 1 and upscaler is None:
            raise ValueError("scale > 1 needs an upscaler checkpoint")
        self.device = torch.device(device)
        self.colorizer = colorizer.to(self.device).eval()
        self.upscaler = upscaler.to(self.device).eval() if upscaler is not None else None
        self.model_size, self.scale = model_size, scale

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(self.device)
        L, _ = uint8_to_lab_normalized(x)  # colour input is made gray: only its L is used
        h, w = L.shape[-2:]
        ab_small = self.colorizer(imresize(L, (self.model_size, self.model_size)).clamp(-1, 1))
        if self.scale > 1:
            L = self.upscaler(L).clamp(-1, 1)
        ab = imresize(ab_small, (h * self.scale, w * self.scale)).clamp(-1, 1)
        return rgb_to_uint8(lab_normalized_to_rgb(L, ab))[0].permute(1, 2, 0).cpu().numpy()


def iter_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (recursive) and globs -> the image files, sorted, without duplicates.

    Raises:
        FileNotFoundError: an input that matches nothing (names it).
    """
    import glob

    from huescale.data.images import IMAGE_EXTENSIONS

    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{item}: no such file, folder or glob match")
            out += matches
    return list(dict.fromkeys(out))
