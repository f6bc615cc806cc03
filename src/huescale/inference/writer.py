"""Writing ``huescale colorize``'s output files: atomically and durably, marked as colorize's own, PNG streamed
band by band.

A PNG is written by :class:`PNGBandWriter` as the tiles of a row band come from
:class:`huescale.inference.tiling.Colorizer` (memory: one band, whatever the output size); other formats go
through a Pillow image (:func:`save_image_atomic`). :func:`colorize_to_file` picks the way and refuses to
replace any file that :func:`is_colorize_output` does not recognise as an earlier output.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from huescale.atomic import atomic_path, clean_stale_tmp, commit, tmp_path
from huescale.inference.paths import output_format
from huescale.inference.tiling import Colorizer

# Every file ``huescale colorize`` writes carries this mark (PNG ``tEXt`` / EXIF tag 305 ``Software``):
# ``--overwrite`` replaces an existing file only when it has it, i.e. only an earlier output of colorize,
# never a photograph or any other file colorize did not write (see :func:`is_colorize_output`).
OUTPUT_MARK = "huescale colorize"
EXIF_SOFTWARE = 0x0131
UNMARKABLE_FORMATS = {".bmp"}  # BMP holds no metadata: an existing .bmp is never replaced


def is_colorize_output(path: str | Path) -> bool:
    """Whether ``path`` is a file that ``huescale colorize`` wrote: an image carrying :data:`OUTPUT_MARK`.

    Only the header is read (PNG text chunks before the image data, EXIF), whatever the image size;
    Pillow's pixel limit is lifted for the call (nothing is decoded).

    Returns:
        False for a missing file, a link, a file that is not an image or cannot be read, and an image
        without the mark (a photograph, an output edited and saved by another program).
    """
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(p) as im:
                software = im.info.get("Software") or im.getexif().get(EXIF_SOFTWARE)
    except Exception:  # noqa: BLE001 - not an image, truncated, unreadable: not an output
        return False
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return isinstance(software, str) and software.startswith(OUTPUT_MARK)


def save_image_atomic(image, path: str | Path, overwrite: bool = True, software: str | None = None,
                      may_replace: Callable[[Path], bool] | None = None) -> None:
    """Save a Pillow image to ``path`` (format from the extension) via a process-private temp file,
    fsync and ``os.replace`` (:func:`huescale.atomic.atomic_path`).

    JPEG and WebP are written at quality 95. A reader never sees a partial file.

    Args:
        image: the Pillow image.
        path: the output file.
        overwrite: replace an existing ``path``; False never replaces one (not even one another
            process creates meanwhile).
        software: written as the EXIF ``Software`` tag (JPEG, WebP, TIFF; BMP holds none).
        may_replace: with ``overwrite``, replace an existing ``path`` only if ``may_replace(path)``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False or ``may_replace`` refuses it.
        ValueError: unsupported extension, or an image the format cannot hold (e.g. WebP
            over 16383 px); names the file.
        OSError: the folder is not writable / the disk is full (temp file removed).
    """
    path = Path(path)
    fmt = output_format(path)
    opts: dict = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if software and fmt != "BMP":
        exif = Image.Exif()
        exif[EXIF_SOFTWARE] = software
        opts["exif"] = exif.tobytes()
    try:
        with atomic_path(path, replace=overwrite, may_replace=may_replace) as tmp:
            image.save(tmp, format=fmt, **opts)
    except FileExistsError:
        raise
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a filesystem error (permissions, disk full): its message names the file
        raise ValueError(f"{path}: {fmt} cannot hold a {image.width}x{image.height} image ({exc}); "
                         "use --format png") from None


class PNGBandWriter:
    """Write an 8-bit RGB PNG row band by row band (memory: one band), atomically.

    Pillow cannot stream-write a PNG (it needs the whole image, 4 bytes a pixel);
    this writes the chunks itself (PNG spec, ISO/IEC 15948: IHDR, zlib-compressed
    IDAT of Paeth-filtered scanlines, IEND) into a temp file that replaces
    ``path`` on :meth:`close`. Use as a context manager; on an exception the temp
    file is removed and ``path`` is untouched.

    Args:
        path: the ``.png`` to write.
        width, height: image size in pixels.
        level: zlib compression level (6, Pillow's default).
        overwrite: replace an existing ``path`` on :meth:`close`; False never replaces one.
        text: ``tEXt`` chunks (Latin-1 keyword -> value) written before the image data, e.g.
            ``{"Software": OUTPUT_MARK}``.
        may_replace: with ``overwrite``, replace an existing ``path`` only if ``may_replace(path)``.

    Raises:
        ValueError: on :meth:`close` if fewer or more than ``height`` rows were written.
        FileExistsError: on :meth:`close`, ``path`` exists and ``overwrite`` is False or ``may_replace``
            refuses it.
    """

    def __init__(self, path: str | Path, width: int, height: int, level: int = 6, overwrite: bool = True,
                 text: dict[str, str] | None = None, may_replace: Callable[[Path], bool] | None = None):
        self.path = Path(path)
        self.width, self.height, self.rows = width, height, 0
        self.overwrite, self.may_replace = overwrite, may_replace
        self.tmp = tmp_path(self.path)
        clean_stale_tmp(self.path)
        self._f = open(self.tmp, "wb")
        self._z = zlib.compressobj(level)
        self._prev = np.zeros((1, width, 3), dtype=np.uint8)
        ihdr = np.array([width, height], dtype=">u4").tobytes() + bytes([8, 2, 0, 0, 0])  # 8-bit RGB
        self._f.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", ihdr)
        for key, value in (text or {}).items():
            self._chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._f.write(len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big"))

    def write(self, rows: np.ndarray, chunk: int = 64) -> None:
        """Append ``rows`` (``r x width x 3`` uint8), Paeth-filtered ``chunk`` rows at a time."""
        if rows.shape[1:] != (self.width, 3) or rows.dtype != np.uint8:
            raise ValueError(f"PNG band must be r x {self.width} x 3 uint8, got {rows.shape} {rows.dtype}")
        for i in range(0, rows.shape[0], chunk):
            band = rows[i:i + chunk]
            up = np.concatenate([self._prev, band[:-1]]).astype(np.int16)
            cur = band.astype(np.int16)
            left = np.zeros_like(cur)
            left[:, 1:] = cur[:, :-1]
            upleft = np.zeros_like(cur)
            upleft[:, 1:] = up[:, :-1]
            pa, pb, pc = np.abs(up - upleft), np.abs(left - upleft), np.abs(left + up - 2 * upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
            filt = ((cur - pred) & 0xFF).astype(np.uint8).reshape(band.shape[0], -1)
            lines = np.concatenate([np.full((band.shape[0], 1), 4, dtype=np.uint8), filt], axis=1)  # 4 = Paeth
            data = self._z.compress(lines.tobytes())
            if data:
                self._chunk(b"IDAT", data)
            self._prev = band[-1:].copy()
            self.rows += band.shape[0]

    def close(self) -> None:
        """Finish the file and move it into place (``os.replace``)."""
        try:
            if self.rows != self.height:
                raise ValueError(f"{self.path}: wrote {self.rows} rows of {self.height}")
            self._chunk(b"IDAT", self._z.flush())
            self._chunk(b"IEND", b"")
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            # os.replace (or a no-replace link, then replace only what may_replace allows) + fsync of the folder
            commit(self.tmp, self.path, self.overwrite, self.may_replace)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the temp file (``path`` is untouched)."""
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> PNGBandWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def colorize_to_file(run: Colorizer, rgb: np.ndarray, path: str | Path,
                     progress: Callable[[int], None] | None = None, overwrite: bool = True) -> tuple[int, int]:
    """Colorize ``rgb`` with ``run`` and write it to ``path`` atomically and durably; format from the extension.

    PNG is streamed band by band (:class:`PNGBandWriter`): memory stays one band
    of tiles whatever the output size. Other formats go through a Pillow image of
    the whole output (4 bytes a pixel) and :func:`save_image_atomic`. The file carries
    :data:`OUTPUT_MARK` (PNG ``tEXt`` / EXIF ``Software``; not BMP, which holds no metadata).

    Args:
        run: the colorizer.
        rgb: ``H x W x 3`` uint8 input.
        path: output file.
        progress: called with the number of tiles done.
        overwrite: replace an existing ``path`` if it is an earlier output of colorize
            (:func:`is_colorize_output`), never another file; False never replaces one.

    Returns:
        The output size ``(height, width)``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False or it is no output of colorize,
            checked first and again at the final rename (a file created meanwhile is judged too);
            ``path`` is then untouched.
        ValueError: an unsupported extension or a size the format cannot hold (names the file).
        OSError: the file cannot be written.
    """
    fmt = output_format(path)
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not overwrite:
            raise FileExistsError(f"{path} exists; not replaced")
        if not is_colorize_output(p):
            raise FileExistsError(f"{path} exists and is not an output of huescale colorize; not replaced")
    keep = dict(overwrite=overwrite, may_replace=is_colorize_output)
    if fmt != "PNG":
        image = run.to_image(rgb, progress)
        save_image_atomic(image, path, software=OUTPUT_MARK, **keep)
        return image.height, image.width
    h, w = rgb.shape[0] * run.scale, rgb.shape[1] * run.scale
    band: dict[str, np.ndarray] = {}
    with PNGBandWriter(path, w, h, text={"Software": OUTPUT_MARK}, **keep) as png:
        def put(y: int, x: int, tile: np.ndarray) -> None:
            if x == 0:
                band["rows"] = np.empty((tile.shape[0], w, 3), dtype=np.uint8)
            band["rows"][:, x:x + tile.shape[1]] = tile
            if x + tile.shape[1] == w:  # the band of tiles is complete
                png.write(band.pop("rows"))

        run.run(rgb, put, progress)
    return h, w
