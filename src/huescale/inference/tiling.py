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

import glob
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from huescale.color import uint8_to_lab_normalized
from huescale.models.pipelines import TwoStepPipeline, lab_to_uint8
from huescale.resize import resize_matrix

# output formats Pillow writes, by extension
WRITABLE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                    ".tiff": "TIFF", ".bmp": "BMP"}

Sink = Callable[[int, int, np.ndarray], None]

# Every file ``huescale colorize`` writes carries this mark (PNG ``tEXt`` / EXIF tag 305 ``Software``):
# ``--overwrite`` replaces an existing file only when it has it, i.e. only an earlier output of colorize,
# never a photograph or any other file colorize did not write (see :func:`is_colorize_output`).
OUTPUT_MARK = "huescale colorize"
EXIF_SOFTWARE = 0x0131
UNMARKABLE_FORMATS = {".bmp"}  # BMP holds no metadata: an existing .bmp is never replaced


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
        from PIL import Image

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


# -- files -----------------------------------------------------------------------------------------
def iter_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (recursive) and globs -> the image files, sorted, without duplicates.

    Raises:
        FileNotFoundError: an input that matches nothing, or a folder without images (names it).
    """
    return [f for f, _ in plan_inputs(inputs)]


def plan_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """Files, folders (recursive) and globs -> ``(image file, relative output path)``, without duplicates.

    A folder's images keep their path below the folder, a glob's their path below its
    non-wildcard prefix, a plain file its name; so same-named photos in different
    sub-folders do not overwrite each other.

    Raises:
        FileNotFoundError: an input that matches nothing, or a folder that holds no image file
            (names it, and the extensions looked for).
    """
    from huescale.data.images import IMAGE_EXTENSIONS

    out: dict[Path, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"{item}: the folder holds no image file "
                                        f"({', '.join(sorted(IMAGE_EXTENSIONS))}, sub-folders included)")
            for f in found:
                out.setdefault(f, f.relative_to(p))
        elif p.is_file():
            out.setdefault(p, Path(p.name))
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"{item}: no such file, folder or glob match")
            parts = Path(item).parts
            base = Path(*[q for q in parts[:next(i for i, q in enumerate(parts) if glob.has_magic(q))]] or ["."])
            for f in matches:
                try:
                    out.setdefault(f, f.relative_to(base))
                except ValueError:
                    out.setdefault(f, Path(f.name))
    return list(out.items())


def output_format(path: str | Path) -> str:
    """Pillow format name for an output file, from its extension.

    Raises:
        ValueError: an extension huescale cannot write (lists the ones it can).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in WRITABLE_FORMATS:
        raise ValueError(f"{path}: cannot write {suffix or 'files without extension'}; "
                         f"use one of {', '.join(sorted(WRITABLE_FORMATS))} (--format)")
    return WRITABLE_FORMATS[suffix]


def output_paths(plan: list[tuple[Path, Path]], out: str | Path, fmt: str | None = None,
                 input_dirs: list[str | Path] = ()) -> list[tuple[Path, Path]]:
    """Where ``huescale colorize`` writes each input: ``(input file, output file)``, checked so that no
    photograph is ever overwritten or lost.

    ``out`` is a folder (each input goes to ``out / <its relative path>``, with the extension
    ``fmt`` or its own when writable, else ``.png``) or, for a single input, a file.

    Args:
        plan: ``(image file, relative output path)`` from :func:`plan_inputs`.
        out: the ``--out`` folder or file.
        fmt: ``--format`` as an extension (``".png"``), or None.
        input_dirs: the folders given as inputs (``--out`` must not lie inside one).

    Returns:
        The ``(input, output)`` pairs in plan order.

    Raises:
        ValueError: ``out`` names one file but several images were given; ``out`` is an existing file
            that is not an image file colorize can write (it would be taken as a folder); ``out`` lies
            inside an input folder; an output would be an input file (itself or another one); two inputs
            map to one output (both named); an output's folder is an existing file.
    """
    out = Path(out)
    single_file = out.suffix.lower() in WRITABLE_FORMATS and not out.is_dir()
    if single_file and len(plan) > 1:
        what = "an existing file" if out.is_file() else "one file"
        raise ValueError(f"--out {out} names {what} but {len(plan)} images were given; pass a folder")
    if not single_file and (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a folder; pass a folder for the results (or, for "
                         f"one input, an output file ending in {', '.join(sorted(WRITABLE_FORMATS))})")
    out_r = out.resolve()
    for d in input_dirs:
        if out_r == Path(d).resolve() or out_r.is_relative_to(Path(d).resolve()):
            raise ValueError(f"--out {out} lies inside the input folder {d}: the results would overwrite or mix "
                             "with the photographs; pass an --out outside it")
    inputs = {f.resolve(): f for f, _ in plan}
    taken: dict[Path, Path] = {}
    pairs = []
    for f, rel in plan:
        if single_file:
            dest = out
        else:
            keep = rel.suffix.lower() if rel.suffix.lower() in WRITABLE_FORMATS else ".png"
            dest = out / rel.with_suffix(fmt or keep)
        key = dest.resolve()
        if key in inputs:
            raise ValueError(f"{dest} is the input {inputs[key]}: colorizing would replace the photograph; "
                             "pass another --out (or --format)")
        if key in taken:
            raise ValueError(f"{taken[key]} and {f} would both be written to {dest}; colorize them into "
                             "different --out folders, pass their folder instead of the files, or rename one")
        blocker = next((q for q in dest.parents if q.is_file()), None)
        if blocker is not None:
            raise ValueError(f"{dest} (output of {f}) cannot be written: {blocker} is a file, not a folder; "
                             "pass another --out")
        taken[key] = f
        pairs.append((f, dest))
    return pairs


def is_colorize_output(path: str | Path) -> bool:
    """Whether ``path`` is a file that ``huescale colorize`` wrote: an image carrying :data:`OUTPUT_MARK`.

    Only the header is read (PNG text chunks before the image data, EXIF), whatever the image size;
    Pillow's pixel limit is lifted for the call (nothing is decoded).

    Returns:
        False for a missing file, a link, a file that is not an image or cannot be read, and an image
        without the mark (a photograph, an output edited and saved by another program).
    """
    import warnings

    from PIL import Image

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
    from huescale.atomic import atomic_path

    path = Path(path)
    fmt = output_format(path)
    opts: dict = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if software and fmt != "BMP":
        from PIL import Image

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
        import zlib

        from huescale.atomic import clean_stale_tmp, tmp_path

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
        import zlib

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
            from huescale.atomic import commit

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


# -- model loading ---------------------------------------------------------------------------------
