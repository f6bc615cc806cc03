"""One photograph -> its pair-store tier arrays (docs/architecture.md): the centre crop, the resize to the
256 tier, and the banded MATLAB-bicubic x1/4 downscale to the 64 tier.

The pool workers of :mod:`huescale.data.store_workers` run :func:`process_image` on every listed image; it is
kept light to import (no tqdm, no download code) because every worker process imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from huescale.config import DataConfig
from huescale.data.images import ImageError, is_grayscale, open_rgb
from huescale.resize import imresize, resize_matrix


@dataclass
class Prepared:
    """One image turned into its tier arrays (uint8, H x W x 3), its full size and the conversions applied."""

    lr64: np.ndarray
    hr256: np.ndarray | None
    width: int
    height: int
    converted: tuple[str, ...] = ()


def _center_square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top:top + s, left:left + s]


@lru_cache(maxsize=64)
def _bands(in_length: int, out_length: int, channels: int = 1, rows: int = 4,
           dtype: type = np.float64) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """:func:`huescale.resize.resize_matrix` cut into bands of ``rows`` output pixels.

    Each band is ``(o0, o1, i0, i1, weights)``: outputs ``o0:o1`` depend only on inputs
    ``i0:i1``, through the dense float64 block ``weights``. With ``channels == 1`` the block is
    ``(o1 - o0) x (i1 - i0)`` (a left factor: rows of an image); with ``channels = c`` it is the
    right factor for pixel-interleaved columns, ``kron(block.T, I_c)``, and the indices count
    values (pixel x c + channel). Small bands keep each matrix product below OpenBLAS's threading
    threshold (threads fighting over 2 busy cores cost 10-50x) and skip the ~94 % zeros of the
    full matrix. ``dtype``: of the row-pass blocks (float32 only where exact, see
    :func:`_rows_exact_in_float32`).
    """
    mat = resize_matrix(in_length, out_length)
    bands: list = []
    for o0 in range(0, out_length, rows):
        o1 = min(o0 + rows, out_length)
        nz = np.flatnonzero((mat[o0:o1] != 0).any(axis=0))
        i0, i1 = int(nz[0]), int(nz[-1]) + 1
        block = mat[o0:o1, i0:i1]
        if channels == 1:
            bands.append((o0, o1, i0, i1, np.ascontiguousarray(block, dtype=dtype)))
        else:
            c = channels
            bands.append((o0 * c, o1 * c, i0 * c, i1 * c, np.ascontiguousarray(np.kron(block.T, np.eye(c)))))
    return tuple(bands)


@lru_cache(maxsize=64)
def _rows_exact_in_float32(in_length: int, out_length: int) -> bool:
    """Whether the row pass of ``in_length -> out_length`` is exact in float32 on uint8 input: every weight a
    multiple of 2^-15, so each product and partial sum (< 2^9 in magnitude) fits float32's 24-bit mantissa."""
    w = resize_matrix(in_length, out_length) * 2.0**15
    return bool(np.array_equal(w, np.round(w)))


def matlab_downscale(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB bicubic ``imresize`` of an ``H x W x C`` uint8 image, computed band by band.

    The same weights as :func:`huescale.resize.imresize` (MATLAB's antialiased a = -0.5
    kernel, symmetric borders), rows then columns, each pass as a few small matrix products
    over the non-zero bands of the resize matrices (:func:`_bands`), with no transposes (the
    column pass multiplies the pixel-interleaved rows from the right): ~5x faster than a
    gather of the taps.

    For an integer factor such as the store's 256 -> 64 (x1/4), the weights are dyadic
    rationals (multiples of 2^-12), so every product and sum of uint8 values is exact in
    float64: the result is bit-identical to ``imresize`` whatever the summation order; the
    row pass is then even exact in float32, which it uses (half the memory traffic). For
    other factors it agrees up to float64 rounding (a value on an exact .5 tie may round the
    other way), so the store uses it for the x1/4 step only.

    Returns:
        ``size[0] x size[1] x C`` uint8, rounded and clipped like ``imresize``.
    """
    h, w, c = a.shape
    oh, ow = size
    if _rows_exact_in_float32(h, oh):
        x = a.reshape(h, w * c).astype(np.float32)
        y = np.empty((oh, w * c), dtype=np.float32)
        for o0, o1, i0, i1, m in _bands(h, oh, 1, 4, np.float32):
            np.matmul(m, x[i0:i1], out=y[o0:o1])
        y = y.astype(np.float64)
    else:
        x = a.reshape(h, w * c).astype(np.float64)
        y = np.empty((oh, w * c))
        for o0, o1, i0, i1, m in _bands(h, oh):
            np.matmul(m, x[i0:i1], out=y[o0:o1])
    z = np.empty((oh, ow * c))
    for o0, o1, i0, i1, k in _bands(w, ow, c):
        np.matmul(y[:, i0:i1], k, out=z[:, o0:o1])
    return np.clip(np.round(z), 0, 255).astype(np.uint8).reshape(oh, ow, c)


def process_image(path: str, cfg: DataConfig) -> Prepared:
    """Read one photograph and make its tier arrays.

    Short side >= ``hr_size``: the centre square is resized (Pillow antialiased
    bicubic, after a JPEG draft decode) to ``hr_size`` square (tier 256), then
    MATLAB-bicubic downscaled by the scale factor (tier 64); the gray test
    looks at that square. Smaller images: centre square, MATLAB bicubic to ``lr_size``.

    Raises:
        ImageError: unreadable (see :func:`huescale.data.images.open_rgb`), ``grayscale`` or ``too_small``.
    """
    notes: list[str] = []
    im, (w, h) = open_rgb(path, cfg.max_pixels, notes, draft_short_side=cfg.hr_size)
    short, lr, hr = min(h, w), cfg.lr_size, cfg.hr_size
    if short >= hr:  # centre square -> hr x hr in one Pillow pass (only the pixels kept are resampled)
        cw, ch = im.size
        side = min(cw, ch)
        if side == hr:  # already the size: integer centre crop, no resampling
            left, top = (cw - side) // 2, (ch - side) // 2
            im = im.crop((left, top, left + side, top + side))
        else:
            box = ((cw - side) / 2, (ch - side) / 2, (cw + side) / 2, (ch + side) / 2)
            im = im.resize((hr, hr), Image.Resampling.BICUBIC, box=box)
    rgb = np.asarray(im)
    if is_grayscale(rgb, cfg.gray_tolerance):
        raise ImageError(path, "grayscale", "grayscale (R~=G~=B): cannot be a colorization target")
    hr_img = None
    if short >= hr:
        hr_img = rgb if rgb.flags.c_contiguous else np.ascontiguousarray(rgb)
        lr_img = matlab_downscale(hr_img, (lr, lr))
    elif short >= lr or cfg.small_images == "upscale":
        lr_img = imresize(_center_square(rgb), (lr, lr))
        if short < lr:
            notes.append("upscaled")
    else:
        raise ImageError(path, "too_small", f"{w}x{h} is smaller than {lr} px on the short side; "
                         "set data.small_images=upscale to use it")
    return Prepared(lr64=lr_img, hr256=hr_img, width=w, height=h, converted=tuple(notes))
