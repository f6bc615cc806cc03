"""The one image reader of huescale: any photograph people have -> 8-bit sRGB.

Every image that enters the pipeline goes through :func:`read_image`, which
turns the odd cases into either a clean ``H x W x 3`` uint8 array or an
:class:`ImageError` that names the file, a short machine-readable ``reason``
(counted in the data manifest) and what to do about it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Default guard against decompression bombs: 64 megapixels (Pillow's own default
# warns at ~89 MP and fails at ~179 MP); ``data.max_pixels`` overrides it.
DEFAULT_MAX_PIXELS = 64_000_000

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".jfif"}
)


class ImageError(ValueError):
    """An image that cannot be used, with the file, a reason code and a hint.

    Attributes:
        path: the offending file.
        reason: one of ``empty``, ``not_an_image``, ``truncated``, ``too_large``,
            ``too_small``, ``grayscale``, ``missing``.
    """

    def __init__(self, path: str | Path, reason: str, message: str):
        self.path = str(path)
        self.reason = reason
        self.detail = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # picklable across worker processes (custom __init__ signature)
        return (type(self), (self.path, self.reason, self.detail))


# What read_image/open_rgb fixed on the way (counted in the data manifest as ``converted``).
CONVERSIONS = ("cmyk", "high_bit_depth", "alpha_composited", "palette", "exif_rotated", "wrong_extension")


def _notes_of(im: Image.Image, path: Path) -> list[str]:
    """The conversions an opened (not yet loaded) image will need; see :data:`CONVERSIONS`."""
    notes = []
    if im.mode == "CMYK":
        notes.append("cmyk")
    args = im.tile[0].args if im.tile else ""
    rawmode = args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F") or ";16" in rawmode:  # e.g. 16-bit RGB PNG: RGB;16B
        notes.append("high_bit_depth")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        notes.append("alpha_composited")
    if im.mode == "P":
        notes.append("palette")
    if im.getexif().get(0x0112, 1) not in (0, 1):
        notes.append("exif_rotated")
    ext_format = Image.registered_extensions().get(path.suffix.lower())
    if im.format and ext_format != im.format:
        notes.append("wrong_extension")
    return notes


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I") and arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if im.mode != "RGB":
        return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    return im


def open_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list[str] | None = None,
             draft_short_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode one image file to an 8-bit RGB Pillow image (the pipeline's one reader).

    Handles JPEG/PNG/... whatever the extension says (the content decides),
    EXIF orientation (applied), CMYK, palette, 16-bit, grayscale (expanded to 3
    equal channels) and transparency (composited on white).

    Args:
        path: the file to read.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
        notes: if given, the conversions applied are appended (names in :data:`CONVERSIONS`).
        draft_short_side: if given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale
            (libjpeg DCT scaling, Pillow ``draft``) as long as its short side stays
            >= this many pixels: much faster for large photos that are downscaled anyway.

    Returns:
        ``(image, (width, height))``: the RGB image (possibly draft-reduced) and
        the full size in pixels after EXIF rotation.

    Raises:
        ImageError: with ``reason`` ``missing``, ``empty``, ``not_an_image``,
            ``truncated`` or ``too_large``; the message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(p, "missing", "file not found; check the path or re-run the download stage")
    if p.stat().st_size == 0:
        raise ImageError(p, "empty", "file is empty (0 bytes); re-download or delete it")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(
                        p, "too_large",
                        f"{w}x{h} = {w * h / 1e6:.0f} MP exceeds the limit of {max_pixels / 1e6:.0f} MP "
                        "(decompression-bomb guard); downscale it or raise data.max_pixels",
                    )
                found = _notes_of(im, p)
                if draft_short_side and im.format == "JPEG" and min(w, h) > 2 * draft_short_side:
                    k = min(w, h) / draft_short_side  # largest reduction keeping the short side >= target
                    im.draft("RGB", (int(w / k) + 1, int(h / k) + 1))
                swaps = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # transposing orientations
                im.load()
                im = ImageOps.exif_transpose(im)
                full = (h, w) if swaps else (w, h)
                if notes is not None:
                    notes.extend(found)
                return _to_rgb(im), full
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(p, "not_an_image", "not a readable image (unknown format); remove it from the input") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(p, "too_large", f"{exc}; downscale it or raise data.max_pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(p, "truncated", f"corrupt or truncated image ({exc}); re-download or remove it") from None


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list[str] | None = None) -> np.ndarray:
    """Decode one image file to 8-bit sRGB (see :func:`open_rgb` for what is handled).

    Args:
        path: the file to read.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
        notes: if given, the conversions applied are appended (names in :data:`CONVERSIONS`).

    Returns:
        ``H x W x 3`` uint8 array, sRGB, values 0..255.

    Raises:
        ImageError: with ``reason`` ``missing``, ``empty``, ``not_an_image``,
            ``truncated`` or ``too_large``; the message names the file.
    """
    im, _ = open_rgb(path, max_pixels, notes)
    return np.asarray(im, dtype=np.uint8).copy()


def is_grayscale(rgb: np.ndarray, tolerance: float = 4.0) -> bool:
    """Whether an 8-bit RGB image is gray (R ~= G ~= B), so unusable as a colour target.

    Args:
        rgb: ``H x W x 3`` uint8 array.
        tolerance: largest 99th-percentile channel spread ``max(R,G,B) - min(R,G,B)``,
            in 8-bit levels, still counted as gray (JPEG noise in gray photos is ~1-3).

    Returns:
        True when 99 % of the pixels have a channel spread <= ``tolerance``.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # per-channel views: ~10x faster than reducing axis 2
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8, never negative
    # np.percentile(spread, 99) (linear interpolation), from the histogram: O(n), no sort
    cum = np.cumsum(np.bincount(spread.ravel(), minlength=256))
    pos = 0.99 * (cum[-1] - 1)
    k = int(pos)
    lo = int(np.searchsorted(cum, k, side="right"))
    hi = int(np.searchsorted(cum, min(k + 1, cum[-1] - 1), side="right"))
    return lo + (pos - k) * (hi - lo) <= tolerance
