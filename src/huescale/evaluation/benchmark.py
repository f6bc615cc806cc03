"""The x4 super-resolution benchmark protocol (Set5, Set14, BSD100, or any folder of HR images).

The protocol of published x4 tables (e.g. VDSR, Kim et al. 2016, Table 2):
- each HR image is mod-cropped to a multiple of the scale factor;
- its LR version is made with MATLAB's ``imresize`` bicubic (antialiased),
  which :func:`huescale.resize.imresize` reproduces (checked against the
  benchmarks' own ``LRbicx4`` images by :func:`check_lr`);
- the SR output is scored on the Y channel (BT.601, MATLAB ``rgb2ycbcr``
  rounding) with ``scale`` pixels cropped at each border: PSNR in dB and SSIM.

Gray images: Set14's ``bridge`` and ``man`` are gray (R = G = B here). Scored
as RGB their Y is ``16 + 219/255 v``; published code that finds a
single-channel file uses the gray values directly as Y, which gives 1.3 dB
less on such an image. Both figures are reported (``psnr_y`` and
``psnr_y_gray_single_channel``) so a reader can see which convention a
published number followed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from huescale import metrics
from huescale.atomic import write_csv, write_json, write_png
from huescale.data.images import IMAGE_EXTENSIONS, read_image
from huescale.models.pipelines import TwoStepPipeline, render
from huescale.progress import bar as progress_bar
from huescale.resize import imresize

Upscale = Callable[[np.ndarray], np.ndarray]  # LR uint8 h x w x 3 -> SR uint8 (s*h) x (s*w) x 3


def hr_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Raises:
        FileNotFoundError: the folder does not exist or has no image files (names it).
    """
    p = Path(folder).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: benchmark folder not found; fix benchmark.sets in params.yaml")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"{p}: no image files in the benchmark folder")
    return files


def mod_crop(hr: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``H x W x C`` to the largest multiple of ``scale`` on each side (top-left kept)."""
    return hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of a mod-cropped HR uint8 image: MATLAB-compatible bicubic ``/ scale``, uint8."""
    return imresize(hr, (hr.shape[0] // scale, hr.shape[1] // scale))


def is_gray(rgb: np.ndarray) -> bool:
    """True when all three channels of a uint8 ``H x W x 3`` image are equal."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def check_lr(hr_folder: str | Path, lr_folder: str | Path, scale: int = 4) -> dict:
    """Compare our bicubic LR images with a benchmark's provided ones (e.g. ``LRbicx4``).

    Returns:
        ``{"images": N, "max_abs_diff": gray levels, "mean_abs_diff": gray levels,
        "share_exact": fraction of pixels equal}``. MATLAB-compatibility means a
        max difference of at most 1 (rounding of the last bit).

    Raises:
        FileNotFoundError: a folder is missing, or an HR image has no LR counterpart.
    """
    worst, diffs, exact, n_px = 0, [], 0, 0
    files = hr_files(hr_folder)
    for f in files:
        ref_path = Path(lr_folder) / f.name
        if not ref_path.is_file():  # EDSR / BasicSR name them <stem>x<scale>.png
            ref_path = Path(lr_folder) / f"{f.stem}x{scale}{f.suffix}"
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: no LR image for {f.name}")
        ours = make_lr(mod_crop(read_image(f), scale), scale).astype(np.int16)
        ref = read_image(ref_path).astype(np.int16)
        if ref.shape != ours.shape:
            raise ValueError(f"{ref_path}: LR shape {ref.shape} is not HR {f.name} / {scale} = {ours.shape}")
        d = np.abs(ours - ref)
        worst = max(worst, int(d.max()))
        diffs.append(float(d.mean()))
        exact += int((d == 0).sum())
        n_px += d.size
    return {"images": len(files), "max_abs_diff": worst, "mean_abs_diff": float(np.mean(diffs)),
            "share_exact": exact / max(n_px, 1)}


def model_upscaler(net: nn.Module, device: torch.device | str = "cpu") -> Upscale:
    """Wrap an upscaler as ``LR uint8 RGB h x w x 3 -> SR uint8 RGB (s*h) x (s*w) x 3``.

    ``net`` is either an L -> L network (huescale's convention: L through it, ab by MATLAB bicubic,
    Frison et al. 2025's recipe) or a whole pipeline module ``(L, ab) -> (L, ab)``
    (:class:`huescale.models.pipelines.TwoStepPipeline`); both are run by
    :func:`huescale.models.pipelines.render`.
    """
    pipeline = net if isinstance(net, TwoStepPipeline) else TwoStepPipeline(None, net, int(net.scale),
                                                                           keep_input_ab=True)
    return lambda lr: render(pipeline, lr[None], device)[0]


def bicubic_upscaler(scale: int) -> Upscale:
    """The bicubic baseline: MATLAB-compatible ``imresize`` x ``scale`` of the RGB image."""
    return lambda lr: imresize(lr, (lr.shape[0] * scale, lr.shape[1] * scale))


def score_set(files: list[Path], methods: dict[str, Upscale], scale: int = 4,
              progress: bool = True, keep: int = 0) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    """Score every method on one benchmark set.

    Args:
        files: HR image paths.
        methods: method name -> upscale function (LR uint8 -> SR uint8).
        scale: the scale factor (also the border cropped before scoring).
        keep: how many images' crops to keep for the report (the first ``keep``).

    Returns:
        ``(summary, per_image, crops)``: summary ``{method: {"psnr_y", "ssim_y",
        "psnr_y_gray_single_channel", "images"}}``; one row per image and method
        (``image, method, gray, psnr_y, ssim_y``); crops ``"<image>|<method>" -> uint8 array``
        (also ``|hr`` and ``|lr``) of the first ``keep`` images.
    """
    rows, crops = [], {}
    for i, f in enumerate(progress_bar(files, desc="SR benchmark", unit="img", disable=not progress)):
        hr = mod_crop(read_image(f), scale)
        lr = make_lr(hr, scale)
        gray = is_gray(hr)
        if i < keep:
            crops[f"{f.name}|hr"], crops[f"{f.name}|lr"] = hr, lr
        for name, up in methods.items():
            sr = up(lr)
            if sr.shape != hr.shape:
                raise ValueError(f"{name} made {sr.shape} from {lr.shape}; expected {hr.shape}")
            p, s = metrics.sr_psnr_ssim(sr[None], hr[None], border=scale)
            p1 = p
            if gray:  # the single-channel convention: the gray value itself is Y
                b = scale
                p1 = metrics.psnr(sr[None, b:-b, b:-b, 0], hr[None, b:-b, b:-b, 0])
            rows.append({"image": f.name, "method": name, "gray": gray, "psnr_y": p, "ssim_y": s,
                         "psnr_y_gray_single_channel": p1})
            if i < keep:
                crops[f"{f.name}|{name}"] = sr
    summary = {}
    for name in methods:
        r = [x for x in rows if x["method"] == name]
        summary[name] = {"psnr_y": float(np.mean([x["psnr_y"] for x in r])),
                         "ssim_y": float(np.mean([x["ssim_y"] for x in r])),
                         "psnr_y_gray_single_channel": float(np.mean([x["psnr_y_gray_single_channel"] for x in r])),
                         "images": len(r), "gray_images": sum(x["gray"] for x in r)}
    return summary, rows, crops


def sr_benchmark(hr_files: list, scale: int = 4, upscale=None) -> dict[str, float]:
    """Score x``scale`` super-resolution on HR benchmark images (Set5, Set14, BSD100 protocol).

    Each HR image is mod-cropped to a multiple of ``scale``, downscaled with the
    MATLAB-compatible bicubic (the ``LRbicx4`` images of the benchmarks), then
    upscaled by ``upscale`` (``None`` = bicubic) and scored on Y with a border of ``scale``.

    Args:
        hr_files: paths of the HR images.
        scale: the scale factor.
        upscale: a function ``LR uint8 h x w x 3 -> SR uint8 (s*h) x (s*w) x 3``, or None for bicubic.

    Returns:
        ``{"psnr_y": dB, "ssim_y": ..., "images": N}`` (means over images).
    """
    ps, ss = [], []
    for f in hr_files:
        hr = read_image(f)
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        lr = imresize(hr, (hr.shape[0] // scale, hr.shape[1] // scale))
        sr = imresize(lr, hr.shape[:2]) if upscale is None else upscale(lr)
        p, s = metrics.sr_psnr_ssim(sr[None], hr[None], border=scale)
        ps.append(p)
        ss.append(s)
    return {"psnr_y": float(np.mean(ps)), "ssim_y": float(np.mean(ss)), "images": len(ps)}


def zoom_box(hr: np.ndarray, size: int = 64) -> tuple[int, int, int, int]:
    """A ``size`` x ``size`` box ``(top, left, bottom, right)`` on the most detailed part of ``hr``.

    Detail = gradient energy of the gray image summed over the box, searched on a
    coarse grid; a deterministic choice that shows edges rather than sky.
    """
    g = hr.astype(np.float32).mean(axis=-1)
    e = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    h, w = e.shape
    size = min(size, h, w)
    best, box = -1.0, (0, 0)
    step = max(size // 4, 1)
    for t in range(0, h - size + 1, step):
        for l in range(0, w - size + 1, step):
            v = float(e[t:t + size, l:l + size].sum())
            if v > best:
                best, box = v, (t, l)
    t, l = box
    return t, l, t + size, l + size


def outline(rgb: np.ndarray, box: tuple[int, int, int, int], width: int = 0) -> np.ndarray:
    """A copy of uint8 ``H x W x 3`` with a red rectangle drawn around ``box`` (top, left, bottom, right).

    ``width`` 0 picks 1 % of the longer side (at least 2 px), visible on a thumbnail.
    """
    out = rgb.copy()
    width = width or max(2, max(out.shape[:2]) // 100)
    t, l, b, r = box
    h, w = out.shape[:2]
    t0, l0, b1, r1 = max(t - width, 0), max(l - width, 0), min(b + width, h), min(r + width, w)
    red = np.array([230, 20, 20], np.uint8)
    out[t0:t, l0:r1] = red
    out[b:b1, l0:r1] = red
    out[t0:b1, l0:l] = red
    out[t0:b1, r:r1] = red
    return out


def run(sets: dict[str, str], upscalers: dict[str, nn.Module | Upscale], scale: int = 4,
        lr_folders: dict[str, str] | None = None, samples_dir: str | Path | None = None,
        keep: int = 2, device: torch.device | str = "cpu", progress: bool = True) -> tuple[dict, list[dict]]:
    """The whole SR benchmark: bicubic and each upscaler on each set, plus the LR check.

    Args:
        sets: set name -> folder of HR images (``Set5 -> .../Set5/GTmod12``).
        upscalers: method name -> L -> L network (e.g. the trained ESPCN), pipeline module, or an
            :data:`Upscale` function; bicubic is always added.
        scale: the scale factor.
        lr_folders: set name -> folder of the provided LR images to check our bicubic against.
        samples_dir: where zoomed crops of the first ``keep`` images per set are written (PNG),
            with an ``index.json``; None writes nothing.
        device: torch device for the networks.

    Returns:
        ``(result, per_image)``: result ``{"scale", "sets": {set: {method: summary}}, "lr_check":
        {set: ...}, "skipped": {set: reason}, "samples": [...]}``; per-image rows with a ``set`` key.
        A missing set folder is skipped with its reason, not an error, so a pipeline without
        the benchmark images still runs.
    """
    methods: dict[str, Upscale] = {"bicubic": bicubic_upscaler(scale)}
    methods.update({name: model_upscaler(net, device) if isinstance(net, nn.Module) else net
                    for name, net in upscalers.items()})
    result: dict = {"scale": scale, "methods": list(methods), "sets": {}, "lr_check": {}, "skipped": {}, "samples": []}
    per_image: list[dict] = []
    out = Path(samples_dir) if samples_dir is not None else None
    for set_name, folder in sets.items():
        try:
            files = hr_files(folder)
        except FileNotFoundError as exc:
            result["skipped"][set_name] = str(exc)
            continue
        summary, rows, crops = score_set(files, methods, scale, progress, keep if out else 0)
        result["sets"][set_name] = summary
        per_image += [{"set": set_name, **r} for r in rows]
        if lr_folders and set_name in lr_folders and Path(lr_folders[set_name]).is_dir():
            result["lr_check"][set_name] = check_lr(folder, lr_folders[set_name], scale)
        if out is None:
            continue
        for f in files[:keep]:
            hr = crops[f"{f.name}|hr"]
            t, l, b, r = zoom_box(hr, 16 * scale)
            entry = {"set": set_name, "image": f.name, "box": [t, l, b, r], "full": write_png(
                outline(hr, (t, l, b, r)), out / set_name / f"{f.stem}_hr_full.png"), "crops": {}}
            lr_crop = crops[f"{f.name}|lr"][t // scale:b // scale, l // scale:r // scale]
            entry["crops"]["LR (input)"] = write_png(lr_crop, out / set_name / f"{f.stem}_lr.png")
            for name in methods:
                entry["crops"][name] = write_png(crops[f"{f.name}|{name}"][t:b, l:r],
                                                 out / set_name / f"{f.stem}_{name}.png")
            entry["crops"]["HR (ground truth)"] = write_png(hr[t:b, l:r], out / set_name / f"{f.stem}_hr.png")
            scores = {x["method"]: round(x["psnr_y"], 2) for x in rows if x["image"] == f.name}
            entry["psnr_y"] = scores
            result["samples"].append(entry)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(result["samples"], out / "index.json")
    return result, per_image


def upscaler_scores(sets: dict[str, str], upscaler: nn.Module | None, scale: int = 4,
                    device: torch.device | str = "cpu") -> dict[str, dict[str, float]]:
    """x``scale`` benchmark scores of one upscaler (an L -> L network; None: the bicubic row, scored as the
    bicubic baseline itself) on each set, with plain bicubic beside it:
    ``{set: {"psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "images"}}``.
    Sets whose folder is missing are left out (as :func:`run` skips them).

    Raises:
        RuntimeError: a set was scored without the model's row (never reported as the model's score).
    """
    model = bicubic_upscaler(scale) if upscaler is None else upscaler
    result, _ = run(sets, {"model": model}, scale, device=device, progress=False)
    out = {}
    for name, methods in result["sets"].items():
        if "model" not in methods:
            raise RuntimeError(f"benchmark set {name}: the upscaler was not scored")
        m, b = methods["model"], methods["bicubic"]
        out[name] = {"psnr_y": m["psnr_y"], "ssim_y": m["ssim_y"], "images": m["images"],
                     "bicubic_psnr_y": b["psnr_y"], "bicubic_ssim_y": b["ssim_y"]}
    return out


def write_per_image_csv(rows: list[dict], path: str | Path) -> None:
    """Per-image benchmark scores as CSV (set, image, method, gray, psnr_y, ssim_y, ...), atomically."""
    write_csv(rows, path, ["set", "image", "method", "gray", "psnr_y", "ssim_y", "psnr_y_gray_single_channel"])
