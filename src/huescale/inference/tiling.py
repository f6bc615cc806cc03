"""Inference on people's own photographs, any size and aspect (the DDColor recipe), in bounded memory.

Recipe (DDColor, Kang et al. 2023; Frison et al. 2025 for "learn L, bicubic ab"):

1. L of the full-resolution input (the input is made gray: only its L is used),
   computed in row bands.
2. The colour model sees L resized (MATLAB bicubic) to its training size
   (64 x 64) and predicts ab there:
   - ``two-step``: the colorizer, ab at 64 x 64;
   - ``joint``: the joint generator (64 L -> 256 Lab), its ab at 256 x 256.
3. ab is resized (MATLAB bicubic) to the output size and merged with the
   output L: the input L (``scale == 1``) or L upscaled x``scale`` by the
   upscaler (two-step; for joint too when an upscaler is given, else bicubic).
   The joint model's own L output is used only where it is what the model was
   trained for: a 64 x 64 input at the model's scale factor.

Step 3 is done tile by tile: the upscaler runs on an input tile grown by a
margin of at least its receptive-field radius (measured by
:func:`receptive_radius`), the margin is cropped away, and the ab tile is the
matching rows/columns of the bicubic resize matrices applied to the small ab
map. The tiles are therefore equal to the untiled result up to float rounding
(no blending needed, no seams), and memory is bounded by the tile size plus
the 8-bit output image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from huescale.color import uint8_to_lab_normalized
from huescale.models.pipelines import TwoStepPipeline, lab_to_uint8
from huescale.resize import resize_matrix

Sink = Callable[[int, int, np.ndarray], None]


def receptive_radius(upscaler: nn.Module, scale: int, max_size: int = 257) -> int:
    """Receptive-field radius of an upscaler, in input (LR) pixels, measured by autograd.

    Back-propagates from the ``scale x scale`` output pixels of the centre input
    pixel of a random ``S x S`` input and returns the farthest input pixel (Chebyshev
    distance) with a non-zero gradient. ``S`` grows (33, 65, ...) until the
    field fits.

    Args:
        upscaler: ``N x 1 x h x w -> N x 1 x (scale*h) x (scale*w)`` network (eval mode).
        scale: its scale factor.
        max_size: largest probe side tried.

    Returns:
        The radius in LR pixels; ``max_size // 2`` or more means "global" (the caller
        should not tile).
    """
    size = 33
    param = next(upscaler.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    while True:
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(1, 1, size, size, generator=g) * 2 - 1).to(device).requires_grad_(True)
        c = size // 2
        with torch.enable_grad():
            out = upscaler(x)
            out[..., c * scale:(c + 1) * scale, c * scale:(c + 1) * scale].sum().backward()
        ys, xs = torch.nonzero(x.grad[0, 0].abs() > 0, as_tuple=True)
        r = int(max((ys - c).abs().max(), (xs - c).abs().max())) if len(ys) else 0
        if r < c - 1 or size >= max_size:
            return r
        size = 2 * size - 1


def l_normalized(rgb: np.ndarray, band: int = 256) -> torch.Tensor:
    """Normalised L of an 8-bit sRGB image, computed ``band`` rows at a time (bounded float buffers).

    Args:
        rgb: ``H x W x 3`` uint8.
        band: rows per conversion.

    Returns:
        ``1 x 1 x H x W`` float32 tensor in [-1, 1] (``L / 50 - 1``), on the CPU.
    """
    h, w = rgb.shape[:2]
    out = torch.empty(1, 1, h, w)
    for y in range(0, h, band):
        x = torch.from_numpy(np.array(rgb[y:y + band])).permute(2, 0, 1)[None].contiguous()  # kornia: 10x faster
        out[..., y:y + band, :] = uint8_to_lab_normalized(x)[0]
    return out


def _matrix(n_in: int, n_out: int) -> np.ndarray:
    """:func:`huescale.resize.resize_matrix` without its cache: photo-sized matrices (up to
    ``16000 x 64`` float64, 8 MB) of a folder of many sizes would otherwise pile up in it."""
    return resize_matrix.__wrapped__(n_in, n_out, True)


def _resize_uncached(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`huescale.resize.imresize` of a float tensor ``... x H x W`` with uncached matrices."""
    wh = torch.tensor(_matrix(x.shape[-2], size[0]), dtype=x.dtype)
    ww = torch.tensor(_matrix(x.shape[-1], size[1]), dtype=x.dtype)
    return wh @ x @ ww.T


class Colorizer:
    """Colorize (and upscale) one photograph: ``H x W x 3`` uint8 -> ``(s*H) x (s*W) x 3`` uint8.

    Args:
        colorizer: two-step colorizer, L ``N x 1 x m x m`` -> ab ``N x 2 x m x m`` (normalised, m =
            ``model_size``); or, with ``joint=True``, the joint generator, L ``N x 1 x m x m`` ->
            Lab ``N x 3 x (k*m) x (k*m)`` (ch 0 = L/50-1, ch 1-2 = ab/110) with attribute ``scale = k``.
        upscaler: L -> L x``scale`` network, or None (then ``scale`` must be 1, or ``joint``: bicubic L).
        model_size: the colour model's input side in pixels (64, the size it was trained at).
        scale: output size factor (1, or the upscaler's / joint model's factor).
        device: torch device the networks run on.
        tile: side of the input tiles, in input pixels (the upscaler sees ``tile + 2 * margin``);
            at ``scale == 1`` tiles are ``4 * tile``.
        margin: overlap each side of a tile, in input pixels; default: the measured receptive-field
            radius of the upscaler plus 4 (or 4 for bicubic), see :func:`receptive_radius`.
        joint: ``colorizer`` is a joint generator (contract above).
        amp: run the networks (only; resizing and colour conversion stay float32) under bf16 autocast:
            1.11x less CPU per x4 BSDS500 photograph on an AVX512-BF16 CPU without AMX (``benchmarks/infer.py
            --photos``), output within a gray level of fp32 on average; see
            :func:`huescale.training.distributed.use_bf16`.

    Raises:
        ValueError: ``scale > 1`` without an upscaler in two-step mode, a joint model without
            ``scale``, a tile below 16 px.
    """

    def __init__(self, colorizer: nn.Module, upscaler: nn.Module | None, model_size: int = 64, scale: int = 1,
                 device: str | torch.device = "cpu", tile: int = 256, margin: int | None = None,
                 joint: bool = False, amp: bool = False):
        if scale > 1 and upscaler is None and not joint:
            raise ValueError("scale > 1 needs an upscaler checkpoint (--upscaler)")
        if joint and not isinstance(getattr(colorizer, "scale", None), int):
            raise ValueError("--pipeline joint: the model has no integer attribute `scale` (joint contract)")
        if tile < 16:
            raise ValueError(f"tile must be >= 16 input pixels, got {tile}")
        self.device = torch.device(device)
        self.colorizer = colorizer.to(self.device).eval()
        self.upscaler = upscaler.to(self.device).eval() if upscaler is not None else None
        self.model_size, self.scale, self.tile, self.joint, self.amp = model_size, scale, tile, joint, amp
        # the two-step pipeline's pieces, run tile by tile (the joint model supplies ab only, see _ab_small)
        self.pipeline = TwoStepPipeline(None if joint else self.colorizer, self.upscaler, scale)
        if margin is None:
            if self.upscaler is not None and scale > 1:
                r = receptive_radius(self.upscaler, scale)
                margin = r + 4 if r < 128 else -1  # -1: global receptive field, never tile
            else:
                margin = 4  # bicubic: 2 taps each side (resize.py), doubled
        self.margin = margin

    # -- the pieces ---------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    @torch.no_grad()
    def _ab_small(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predicted normalised ab at the model's output size, and the joint model's L when usable."""
        m = self.model_size
        small = _resize_uncached(L, (m, m)).clamp(-1, 1).to(self.device)
        with self._autocast():
            if not self.joint:
                return self.pipeline.colorize(small).float().cpu(), None
            out = self.colorizer(small).float().cpu()
        k = self.colorizer.scale
        if out.ndim != 4 or out.shape[1] != 3 or out.shape[-2:] != (k * m, k * m):
            raise ValueError(f"joint model returned {tuple(out.shape)}, expected N x 3 x {k * m} x {k * m}")
        usable = tuple(L.shape[-2:]) == (m, m) and self.scale == k
        return out[:, 1:], (out[:, :1] if usable else None)

    @torch.no_grad()
    def _upscale(self, L: torch.Tensor) -> torch.Tensor:
        """L tile ``1 x 1 x h x w`` -> ``1 x 1 x (s*h) x (s*w)`` on the CPU (upscaler, else bicubic)."""
        with self._autocast():
            return self.pipeline.upscale_l(L.to(self.device)).float().cpu()

    # -- the whole image ----------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, rgb: np.ndarray, sink: Sink, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Colorize ``rgb`` tile by tile, handing each finished tile to ``sink(y, x, tile)``.

        Args:
            rgb: ``H x W x 3`` uint8 sRGB (colour or gray; only its L is used).
            sink: called with the tile's top-left corner in output pixels and the
                ``th x tw x 3`` uint8 tile.
            progress: called with the number of tiles done after each tile.

        Returns:
            The output size ``(s*H, s*W)``.
        """
        s = self.scale
        L = l_normalized(rgb)
        h, w = L.shape[-2:]
        ab_small, L_joint = self._ab_small(L)
        oh, ow = h * s, w * s
        # ab = Wh @ ab_small @ Ww.T, taken a block of rows/columns at a time (float32, as imresize)
        wh = torch.tensor(_matrix(ab_small.shape[-2], oh), dtype=torch.float32)
        ww = torch.tensor(_matrix(ab_small.shape[-1], ow), dtype=torch.float32)
        t = self.tile if s > 1 else 4 * self.tile
        m = self.margin
        if L_joint is not None or m < 0:
            t = max(h, w)  # one tile: the joint model's own L, or an upscaler that cannot be tiled
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                if L_joint is not None:
                    Lt = L_joint
                elif s == 1:
                    Lt = L[..., y0:y1, x0:x1]
                else:
                    py0, px0, py1, px1 = max(0, y0 - m), max(0, x0 - m), min(h, y1 + m), min(w, x1 + m)
                    up = self._upscale(L[..., py0:py1, px0:px1])
                    Lt = up[..., (y0 - py0) * s:(y1 - py0) * s, (x0 - px0) * s:(x1 - px0) * s]
                abt = wh[y0 * s:y1 * s] @ ab_small @ ww[x0 * s:x1 * s].T
                tile = lab_to_uint8(Lt, abt)
                sink(y0 * s, x0 * s, tile[0].permute(1, 2, 0).numpy())
                if progress is not None:
                    progress(1)
        return oh, ow

    def n_tiles(self, height: int, width: int) -> int:
        """How many tiles :meth:`run` makes for an ``height x width`` input."""
        t = self.tile if self.scale > 1 else 4 * self.tile
        if self.margin < 0:
            return 1
        return -(-height // t) * -(-width // t)

    def to_image(self, rgb: np.ndarray, progress: Callable[[int], None] | None = None):
        """Colorize into a Pillow RGB image, pasting tiles: peak memory ~ the output image + one tile.

        Pillow holds RGB at 4 bytes per pixel: a 16000 x 12000 result takes 768 MB.
        """
        h, w = rgb.shape[:2]
        canvas = Image.new("RGB", (w * self.scale, h * self.scale))
        self.run(rgb, lambda y, x, tile: canvas.paste(Image.fromarray(tile), (x, y)), progress)
        return canvas

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``H x W x 3`` uint8 -> ``(s*H) x (s*W) x 3`` uint8 (the whole result as one array)."""
        h, w = rgb.shape[:2]
        out = np.empty((h * self.scale, w * self.scale, 3), dtype=np.uint8)

        def put(y: int, x: int, tile: np.ndarray) -> None:
            out[y:y + tile.shape[0], x:x + tile.shape[1]] = tile

        self.run(rgb, put)
        return out
