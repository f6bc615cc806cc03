"""The one image reader of huescale: any photograph people have -> 8-bit sRGB.

Every image that enters the pipeline goes through :func:`read_image`, which
turns the odd cases into either a clean ``H x W x 3`` uint8 array or an
:class:`ImageError` that names the file, a short machine-readable ``reason``
(counted in the data manifest) and what to do about it.

Conventions for the values of unusual files:
- the bit depth comes from the file's mode, never from its values: 16-bit images
  (``I;16*``, and ``I`` from a 16-bit source) are scaled by 255/65535, a TIFF by its
  ``BitsPerSample``; so a dark 16-bit photo stays dark;
- float images (mode ``F``, e.g. 32-bit float TIFF) hold linear-range values in
  [0, 1] (the usual convention of float image files): 0 -> 0, 1 -> 255, values
  outside are clipped and NaN becomes 0;
- an embedded ICC profile (Display P3 phone photos, Adobe RGB cameras, CMYK print
  files) is honoured: pixels are converted to sRGB with Pillow's ImageCms (LittleCMS,
  the profile's default intent), reported as the conversion ``icc``; sRGB-named
  profiles are left alone (they are sRGB already);
- the decompression-bomb limit is ``max_pixels`` (``data.max_pixels``, ``--max-pixels``),
  also above Pillow's own 89.5 MP default, which is set per call and restored.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
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
CONVERSIONS = ("cmyk", "high_bit_depth", "alpha_composited", "palette", "exif_rotated", "wrong_extension", "icc")

HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I;16BS", "I;16LS", "I", "F")


def _rawmode(im: Image.Image) -> str:
    args = im.tile[0].args if im.tile else ""
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")


def _notes_of(im: Image.Image, path: Path, orientation: int, rawmode: str) -> list[str]:
    """The conversions an opened image will need; see :data:`CONVERSIONS` (``icc`` is added by
    :func:`_to_rgb`, which knows whether the profile was applied). ``rawmode``: the decoder's raw
    mode, read before anything loads the image (Pillow clears it then)."""
    notes = []
    if im.mode == "CMYK":
        notes.append("cmyk")
    if im.mode in HIGH_BIT_MODES or ";16" in rawmode:  # e.g. 16-bit RGB PNG: RGB;16B
        notes.append("high_bit_depth")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        notes.append("alpha_composited")
    if im.mode == "P":
        notes.append("palette")
    if orientation not in (0, 1):
        notes.append("exif_rotated")
    ext_format = Image.registered_extensions().get(path.suffix.lower())
    if im.format and ext_format != im.format:
        notes.append("wrong_extension")
    return notes


def _full_scale(im: Image.Image, raw: str) -> float | None:
    """The value that means full white for a high-bit-depth image, decided from its mode, raw mode
    (read before loading) and header, never from its pixel values; None for float images (``F``:
    the [0, 1] convention)."""
    if im.mode == "F":
        return None
    bits = None
    if im.format == "TIFF":
        tag = getattr(im, "tag_v2", {}).get(258)  # BitsPerSample
        bits = int(tag[0] if isinstance(tag, tuple) else tag) if tag else None
    if bits is None:
        bits = 16 if (im.mode.startswith("I;16") or "16" in raw) else 32 if "32" in raw else 16
    return float(2**min(bits, 32) - 1)


@lru_cache(maxsize=16)
def _icc_transform(icc: bytes, mode: str):
    """A cached ImageCms transform ``mode`` (RGB or CMYK) in the embedded profile -> sRGB, or None when the
    profile is sRGB already, unreadable, or not for ``mode``."""
    from PIL import ImageCms  # lazy: littlecms, only for photographs with an ICC profile

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(src).lower():
            return None  # sRGB already (IEC 61966-2.1 and its vendor copies)
        return ImageCms.buildTransform(src, _srgb_profile(), mode, "RGB")
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return None  # a broken profile, or one for another colour space (gray, Lab): ignored


@lru_cache(maxsize=1)
def _srgb_profile():
    from PIL import ImageCms  # lazy: littlecms, only for photographs with an ICC profile

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_rgb(im: Image.Image, icc: bytes | None = None, notes: list[str] | None = None,
            full_scale: float | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit sRGB; transparency is composited on white.

    Args:
        im: a loaded image.
        icc: its embedded ICC profile, applied (RGB or CMYK profiles) to reach sRGB.
        notes: ``"icc"`` is appended when the profile changed the pixels.
        full_scale: for 16/32-bit integer modes, the value of white (:func:`_full_scale`); float
            (``F``) images use the [0, 1] convention.
    """
    if im.mode in HIGH_BIT_MODES:
        arr = np.asarray(im, dtype=np.float64)
        peak = None if im.mode == "F" else (full_scale or _full_scale(im, ""))
        if peak is None:  # float: [0, 1] -> 0..255
            arr = np.nan_to_num(arr, nan=0.0) * 255.0
        else:
            arr = arr / peak * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if icc and im.mode == "CMYK" and (t := _icc_transform(icc, "CMYK")) is not None:
        if notes is not None:
            notes.append("icc")
        return t.apply(im)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im).convert("RGB")
    elif im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    if icc and im.mode == "RGB" and (t := _icc_transform(icc, "RGB")) is not None:
        if notes is not None:
            notes.append("icc")
        im = t.apply(im)
    return im


def open_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, notes: list[str] | None = None,
             draft_short_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode one image file to an 8-bit RGB Pillow image (the pipeline's one reader).

    Handles JPEG/PNG/... whatever the extension says (the content decides),
    EXIF orientation (applied), CMYK, palette, 16-bit and float (see the module's
    conventions), embedded ICC profiles (converted to sRGB), grayscale (expanded to 3
    equal channels) and transparency (composited on white).

    Args:
        path: the file to read.
        max_pixels: refuse images with more pixels than this (decompression-bomb guard; it replaces
            Pillow's ``Image.MAX_IMAGE_PIXELS`` during the call, so limits above 89.5 MP work).
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
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own guard follows ours (its default would fire at 89.5 MP)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below names the limit
            with Image.open(p) as im:
                return _decode(im, p, max_pixels, notes, draft_short_side)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(p, "not_an_image", "not a readable image (unknown format); remove it from the input") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(p, "too_large", _too_large(str(exc), max_pixels)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(p, "truncated", f"corrupt or truncated image ({exc}); re-download or remove it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def _decode(im: Image.Image, p: Path, max_pixels: int, notes: list[str] | None,
            draft_short_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """The work of :func:`open_rgb` on the opened image ``im`` of file ``p``: the size check, the conversions
    noted, the JPEG draft, the EXIF rotation and the RGB conversion; returns ``(rgb, (width, height))``.

    Raises:
        ImageError: ``too_large``; Pillow's own errors pass through to :func:`open_rgb`, which names them.
    """
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(p, "too_large", _too_large(f"{w}x{h} = {w * h / 1e6:.0f} MP", max_pixels))
    raw = _rawmode(im)  # before getexif: for a PNG it loads the image, which clears the tile
    full_scale = _full_scale(im, raw) if im.mode in HIGH_BIT_MODES else None
    orientation = im.getexif().get(0x0112, 1)
    found = _notes_of(im, p, orientation, raw)
    icc = im.info.get("icc_profile")
    if draft_short_side and im.format == "JPEG" and min(w, h) > 2 * draft_short_side:
        k = min(w, h) / draft_short_side  # largest reduction keeping the short side >= target
        im.draft("RGB", (int(w / k) + 1, int(h / k) + 1))
    im.load()
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        im = ImageOps.exif_transpose(im)
    full = (h, w) if orientation in (5, 6, 7, 8) else (w, h)  # transposing orientations swap sides
    rgb = _to_rgb(im, icc, found, full_scale)
    if notes is not None:
        notes.extend(found)
    return rgb, full


def _too_large(size: str, max_pixels: int) -> str:
    return (f"{size} exceeds the limit of {max_pixels / 1e6:.0f} MP (decompression-bomb guard); downscale it, "
            "or raise the limit: data.max_pixels in params.yaml (prepare) or --max-pixels (huescale colorize)")


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
        True when ``np.percentile(spread, 99)`` (linear interpolation) is <= ``tolerance``.
    """
    planes = np.ascontiguousarray(np.moveaxis(rgb, -1, 0))  # planar copy: ~2x faster than strided channel views
    r, g, b = planes[0], planes[1], planes[2]
    spread = np.maximum(np.maximum(r, g), b)
    spread -= np.minimum(np.minimum(r, g), b)  # uint8, never negative
    n = spread.size
    pos = 0.99 * (n - 1)
    k = int(pos)
    # The percentile lies between the order statistics s[k] and s[k+1]. One count decides in almost every
    # case: with t = floor(tolerance), if s[k+1] <= t it is <= tolerance; if s[k] > t it is above.
    t = int(np.floor(tolerance))
    if t >= 255:
        return True
    if t < 0:
        return False
    at_most_t = int(np.count_nonzero(spread <= t))
    if at_most_t >= k + 2:
        return True
    if at_most_t <= k:
        return False
    # s[k] <= t < s[k+1]: interpolate exactly, np.percentile's way, from the histogram (O(n), no sort)
    cum = np.cumsum(np.bincount(spread.ravel(), minlength=256))
    lo = int(np.searchsorted(cum, k, side="right"))
    hi = int(np.searchsorted(cum, min(k + 1, cum[-1] - 1), side="right"))
    return lo + (pos - k) * (hi - lo) <= tolerance
