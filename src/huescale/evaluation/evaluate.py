"""The evaluate stage's library: score the trained models and baselines on the test split.

Writes one metrics dict (docs/architecture.md) with three sections:
- ``colorization_64``: the colorizer vs the gray baseline (ab = 0), at 64 px.
- ``two_step_256``: 64 gray -> 256 colour (Frison et al. 2025 two-step) vs gray + bicubic, at 256 px.
- ``sr_x4``: x4 super-resolution, Y-channel PSNR/SSIM with a border of 4: the
  upscaler on L (ab by bicubic) vs plain bicubic of the RGB image.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from huescale import metrics
from huescale.atomic import write_csv, write_png
from huescale.config import EvaluateConfig
from huescale.data.images import ImageError, is_grayscale, read_image
from huescale.data.store import PairStore
from huescale.evaluation import fid as fidmod
from huescale.models.pipelines import JointPipeline, TwoStepPipeline, bicubic_rgb, render
from huescale.progress import bar as progress_bar
from huescale.resize import imresize
from huescale.training.distributed import use_bf16


@torch.no_grad()
def run_models(store: PairStore, colorizer: nn.Module, upscaler: nn.Module, device: torch.device,
               scale: int = 4, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Run every method on the test split; returns ``N x H x W x 3`` uint8 image sets by name.

    Names: ``gt_64``, ``color_64``, ``gray_64`` (tier 64); ``gt_256``, ``lr_256``
    (the 64 px colour originals), ``input_gray_64`` (their L, the pipeline input),
    ``two_step_256``, ``gray_bicubic_256``, ``sr_model_256`` (the upscaler on L, ab bicubic),
    ``sr_bicubic_256`` (bicubic of the RGB image) (tier 256). Each is one
    :func:`huescale.models.pipelines.render` of a :class:`~huescale.models.pipelines.TwoStepPipeline`.
    """
    img64 = store.images("test", "gt64")
    lr, hr = store.images("test", "lq64"), store.images("test", "gt256")
    runs = {
        "color_64": (TwoStepPipeline(colorizer, None, 1), img64),
        "gray_64": (TwoStepPipeline(None, None, 1), img64),
        "input_gray_64": (TwoStepPipeline(None, None, 1), lr),
        "two_step_256": (TwoStepPipeline(colorizer, upscaler, scale), lr),
        "gray_bicubic_256": (TwoStepPipeline(None, None, scale), lr),
        "sr_model_256": (TwoStepPipeline(None, upscaler, scale, keep_input_ab=True), lr),
    }
    out = {name: render(pipeline, images, device, batch_size) for name, (pipeline, images) in runs.items()}
    out["sr_bicubic_256"] = bicubic_rgb(lr, scale, batch_size)
    out.update(gt_64=img64, gt_256=hr, lr_256=lr)
    return out


def fid_or_reason(cfg: EvaluateConfig, device: torch.device) -> tuple[fidmod.FID | None, str | None]:
    """The FID scorer of ``evaluate.*`` params, or None and the reason (disabled, or no Inception weights here:
    the reason names the file and how to provide it). Never a made-up number."""
    if not cfg.fid:
        return None, "disabled by evaluate.fid=false"
    if not fidmod.FID.available(cfg.fid_weights or None):
        return None, fidmod.FID.missing_reason(cfg.fid_weights or None)
    return fidmod.FID(str(device), cfg.fid_batch_size, cfg.fid_weights or None, cfg.fid_cache or None), None


def score(images: dict[str, np.ndarray], epsilon: float, scale: int, fid: fidmod.FID | None,
          fid_reason: str | None, names: list[str] | None = None) -> tuple[dict, dict[str, list[dict]]]:
    """The metrics ``names`` of the metric table (:mod:`huescale.metrics`; None: all) of every method against its
    ground truth (see the module docstring).

    Each image is scored once for the per-image metrics: the set's value is the mean of the per-image ones (the
    same values, as all images of a tier have the same size); set metrics (FID, colour distribution) once per
    set. FID is ``None`` with ``fid_reason`` when ``fid`` is None, never a made-up number.

    Returns:
        ``(metrics dict, per-image metrics by prediction name)``.
    """
    per_image: dict[str, list[dict]] = {}

    def colour(pred: str, gt: str) -> dict:
        per = per_image[pred] = metrics.per_image(images[pred], images[gt], names, epsilon)
        m = {k: float(np.mean([p[k] for p in per])) for k in per[0]} if per else {}
        m.update(metrics.compute(images[pred], images[gt], names, per="set", epsilon=epsilon, fid=fid))
        return m

    def sr(pred: str) -> dict:
        if not len(images["gt_256"]):
            return {}
        p, s = metrics.sr_psnr_ssim(images[pred], images["gt_256"], border=scale)
        return {"psnr_y": p, "ssim_y": s}

    result = {
        "colorization_64": {"model": colour("color_64", "gt_64"), "gray_baseline": colour("gray_64", "gt_64")},
        "two_step_256": {"model": colour("two_step_256", "gt_256"),
                         "gray_bicubic_baseline": colour("gray_bicubic_256", "gt_256")},
        "sr_x4": {"model": sr("sr_model_256"), "bicubic_baseline": sr("sr_bicubic_256")},
        "n_test": {"tier_64": int(len(images["gt_64"])), "tier_256": int(len(images["gt_256"]))},
        "fid_note": fid_reason,
    }
    return result, per_image


def set_metrics(pred: np.ndarray, truth: np.ndarray, epsilon: float, names: list[str] | None = None) -> dict:
    """The metrics ``names`` of the metric table (:func:`huescale.metrics.compute`; None: all; FID is None: no
    Inception here) of ``N x H x W x 3`` uint8 sets; ``{}`` when empty."""
    if not len(pred):
        return {}
    return metrics.compute(pred, truth, names, epsilon=epsilon)


@torch.no_grad()
def score_holdout(store: PairStore, colorizer: nn.Module, upscaler: nn.Module | None, device: torch.device,
                  epsilon: float, scale: int = 4, batch_size: int = 32,
                  names: list[str] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Score a colorizer (and the two-step pipeline with ``upscaler``) on a held-out set's store, beside the gray
    baseline: photographs training never read.

    Returns:
        ``(result, images)``: result ``{"colorization_64": {"model", "gray_baseline"}, "two_step_256": {"model",
        "gray_bicubic_baseline"}, "n": {"tier_64", "tier_256"}}``, each method's :func:`set_metrics` (the 256 px
        section is empty when no image has a short side of 256 or more, or without an upscaler); images by name
        (``gt_64``, ``color_64``, ``gray_64``, ``gt_256``, ``input_gray_64``, ``two_step_256``) for sample grids.
    """
    img64 = store.images("test", "gt64")
    lr, hr = store.images("test", "lq64"), store.images("test", "gt256")
    images = {"gt_64": img64, "color_64": render(TwoStepPipeline(colorizer, None, 1), img64, device, batch_size),
              "gray_64": render(TwoStepPipeline(None, None, 1), img64, device, batch_size),
              "gt_256": hr, "input_gray_64": render(TwoStepPipeline(None, None, 1), lr, device, batch_size)}
    result = {"colorization_64": {"model": set_metrics(images["color_64"], img64, epsilon, names),
                                  "gray_baseline": set_metrics(images["gray_64"], img64, epsilon, names)},
              "two_step_256": {}, "n": {"tier_64": int(len(img64)), "tier_256": int(len(hr))}}
    if len(hr) and upscaler is not None:
        images["two_step_256"] = render(TwoStepPipeline(colorizer, upscaler, scale), lr, device, batch_size)
        gray = render(TwoStepPipeline(None, None, scale), lr, device, batch_size)
        result["two_step_256"] = {"model": set_metrics(images["two_step_256"], hr, epsilon, names),
                                  "gray_bicubic_baseline": set_metrics(gray, hr, epsilon, names)}
    return result, images


def save_holdout_samples(images: dict[str, np.ndarray], folder: str | Path, name: str, rows: int) -> list[dict]:
    """The first ``rows`` images of a held-out set (the seeded subset's order, no picking) as PNGs: gray input,
    colorized, truth; at 256 px through the two-step pipeline when the set has that tier, else at 64 px.
    Returns one dict per row: panel name -> file name, plus ``set``."""
    big = "two_step_256" in images and len(images["gt_256"])
    panels = (("input", "input_gray_64"), ("output", "two_step_256"), ("ground_truth", "gt_256")) if big else \
        (("input", "gray_64"), ("output", "color_64"), ("ground_truth", "gt_64"))
    out = []
    for i in range(min(rows, len(images[panels[-1][1]]))):
        row = {"set": name, "size": 256 if big else 64}
        for panel, key in panels:
            row[panel] = write_png(images[key][i], Path(folder) / f"{name}_{i:03d}_{panel}.png")
        out.append(row)
    return out


def holdout_stores(root: str | Path) -> dict[str, PairStore]:
    """The held-out sets' pair stores under ``root`` (``data/holdout_pairs``): set name -> store; ``{}`` if none."""
    root = Path(root)
    if not root.is_dir():
        return {}
    return {p.name: PairStore(p) for p in sorted(root.iterdir()) if (p / "manifest.json").is_file()}


def holdout_baselines(stores: dict[str, PairStore], device: torch.device, epsilon: float,
                      batch_size: int = 32) -> dict[str, dict[str, dict[str, float]]]:
    """The gray baseline of every held-out set at 64 px (kind ``colorizer``) and gray + bicubic at 256 px
    (``two_step``): what a row must beat; ``{set: {kind: metrics of score_row}}``."""
    return {name: {kind: score_row(kind, gray_pipeline(kind), s, device, epsilon, batch_size, fps=False)
                   for kind in ("colorizer", "two_step")} for name, s in stores.items()}


def gray_pipeline(kind: str, scale: int = 4) -> nn.Module:
    """The do-nothing baseline of a row kind: gray at 64 px (colorizer rows) or gray + bicubic x``scale``."""
    return TwoStepPipeline(None, None, 1 if kind == "colorizer" else scale)


def row_pipeline(kind: str, nets: dict[str, nn.Module | None], scale: int = 4) -> nn.Module:
    """The pipeline an ablation row is scored with.

    ``colorizer``: the colorizer at 64 px; ``upscaler``: x``scale`` SR of the colour LR image
    (the upscaler on L, or bicubic when it is None; ab bicubic); ``joint``: the joint generator;
    ``two_step``: colorizer + upscaler (Frison et al. 2025).

    Raises:
        KeyError: a network the kind needs is missing from ``nets`` (names it).
    """
    need = {"colorizer": ["colorizer"], "upscaler": ["upscaler"], "joint": ["joint"],
            "two_step": ["colorizer", "upscaler"]}[kind]
    missing = [n for n in need if n not in nets]
    if missing:
        raise KeyError(f"row of kind {kind}: no trained {', '.join(missing)}")
    if kind == "colorizer":
        return TwoStepPipeline(nets["colorizer"], None, 1)
    if kind == "upscaler":
        return TwoStepPipeline(None, nets["upscaler"], scale, keep_input_ab=True)
    if kind == "joint":
        return JointPipeline(nets["joint"])  # type: ignore[arg-type]
    return TwoStepPipeline(nets["colorizer"], nets["upscaler"], scale)


def score_row(kind: str, pipeline: nn.Module, store: PairStore, device: torch.device, epsilon: float,
              batch_size: int = 32, scale: int = 4, fps: bool = True, names: list[str] | None = None) -> dict:
    """Test-split metrics of an ablation row's pipeline (:func:`row_pipeline`).

    ``colorizer``: the 64 px metrics of :func:`set_metrics` (per-pixel and colour distribution) on tier 64;
    other kinds: the same at 256 px on tier 256 (input: the 64 px LR image; gray for
    ``joint``/``two_step``, colour for ``upscaler``), plus x4 Y-PSNR/SSIM with a border of ``scale``.
    ``store`` may be the pair store or a held-out set's store (its test split).
    ``fps`` (when asked): images per second at batch 1 on ``device`` (Singh et al. Table 6).

    Returns:
        ``{metric: value, "n_test": N, "fps": img/s}``.
    """
    if kind == "colorizer":
        inputs = truth = store.images("test", "gt64")
    else:
        inputs, truth = store.images("test", "lq64"), store.images("test", "gt256")
    pred = render(pipeline, inputs, device, batch_size)
    out = set_metrics(pred, truth, epsilon, names)
    if kind != "colorizer" and len(pred):
        out["psnr_y"], out["ssim_y"] = metrics.sr_psnr_ssim(pred, truth, border=scale)
    out["n_test"] = int(len(pred))
    if fps:
        fps_net = TwoStepPipeline(None, pipeline.upscaler, scale) if kind == "upscaler" else pipeline  # input L only
        out["fps"] = measure_fps(fps_net, (1, inputs.shape[1], inputs.shape[2]) if len(inputs) else (1, 64, 64),
                                 device, 1, 1, 3)
    return out


@torch.no_grad()
def measure_fps(model: nn.Module, shape: tuple[int, ...], device: torch.device, batch_size: int,
                warmup: int = 2, iters: int = 5, tuned: bool = False) -> float:
    """Images per second of ``model`` on random input of ``shape`` (C x H x W), after warm-up.

    With ``tuned`` the input is channels_last and runs under bf16 autocast where ``runtime.amp: auto`` would
    use it (CUDA; CPUs with AMX/AVX512-BF16: :func:`huescale.training.distributed.use_bf16`).
    """
    x = torch.rand(batch_size, *shape, device=device) * 2 - 1
    if tuned:
        x = x.contiguous(memory_format=torch.channels_last)
    model = model.to(device).eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tuned and use_bf16("auto", device)):
        for _ in range(warmup):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(iters):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch_size * iters / (time.perf_counter() - t)


def finite_or_none(d):
    """Replace non-finite floats by None, recursively (JSON has no NaN/inf)."""
    if isinstance(d, dict):
        return {k: finite_or_none(v) for k, v in d.items()}
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def worst_first(rows: list[dict], group: str | None = None) -> list[dict]:
    """``rows`` (dicts of per-image metrics) sorted worst first by the first per-image metric of the metric
    table that they carry and that has a direction (MAE by default: highest first), within ``group`` (a key,
    e.g. ``method``) when given; unchanged order when they carry none."""
    spec = next((m for m in metrics.select(per="image") if m.better != "none" and rows and m.name in rows[0]), None)
    if spec is None:
        return rows
    sign = 1.0 if spec.better == "higher" else -1.0
    return sorted(rows, key=lambda r: (r[group] if group else "", sign * r[spec.name]))


def write_per_image_csv(per_image: dict[str, list[dict]], store: PairStore, path: str | Path) -> int:
    """Per-image scores of the colorizer (64 px) and the two-step pipeline (256 px) as CSV, worst first.

    ``per_image`` is the second value returned by :func:`score`.

    Columns: ``method, key, path`` and every per-image metric of the run (``evaluate.metrics``, the metric
    table's order: ``mae, epsilon_accuracy, psnr, ssim, delta_e2000, colorfulness, colorfulness_truth`` by
    default); rows :func:`worst_first` per method. Returns the number of rows.
    """
    rows = []
    for method, pred, tier in (("colorizer_64", "color_64", "64"), ("two_step_256", "two_step_256", "256")):
        for rec, m in zip(store.records("test", tier), per_image[pred]):
            rows.append({"method": method, "key": rec["key"], "path": rec["path"], **m})
    columns = list(rows[0]) if rows else ["method", "key", "path"]  # every metric computed: none dropped
    write_csv(worst_first(rows, "method"), path, columns)
    return len(rows)


def save_samples(images: dict[str, np.ndarray], folder: str | Path, rows: int,
                 keys: list[str] | None = None) -> list[dict]:
    """Save the first ``rows`` test images of tier 256 as PNGs (input, two-step, gray bicubic, ground truth).

    Returns one dict per row: panel name -> file name, plus ``key`` (the image's source key).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    n = min(rows, len(images["gt_256"]))
    for i in range(n):
        row = {}
        panels = {"input": images["input_gray_64"][i], "two_step": images["two_step_256"][i],
                  "bicubic_gray": images["gray_bicubic_256"][i], "ground_truth": images["gt_256"][i]}
        for name, arr in panels.items():
            fn = f"{i:03d}_{name}.png"
            Image.fromarray(arr).save(folder / fn)
            row[name] = fn
        row["key"] = keys[i] if keys else f"test image {i}"
        out.append(row)
    return out


def score_folder(files: list[Path], colorize, epsilon: float = 0.05, max_side: int = 512,
                 progress: bool = True, names: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """Colorization on any folder of colour photographs: make each gray, colorize it, score it.

    Each photograph is read with :func:`huescale.data.images.read_image` (EXIF, CMYK,
    16-bit, RGBA handled), shrunk so its longer side is at most ``max_side`` (MATLAB
    bicubic; 0 keeps the full size), and its L channel is all the colorizer sees
    (``colorize`` takes the RGB image and uses only its L). The output is scored
    against the photograph with the per-image metrics ``names`` of the metric table (None: all).

    Args:
        files: image paths.
        colorize: ``uint8 H x W x 3 -> uint8 H x W x 3`` (e.g. :class:`huescale.inference.tiling.Colorizer`, scale 1).
        epsilon: epsilon-accuracy threshold, a fraction of 255 (Singh et al.: 0.05).
        max_side: longest side scored, in pixels.

    Returns:
        ``(rows, skipped)``: one row per scored image (``file, height, width`` and the per-image metrics:
        ``mae, epsilon_accuracy, psnr, ssim, delta_e2000, colorfulness, colorfulness_truth`` by default),
        :func:`worst_first` (highest MAE first); and ``{"file", "reason"}`` for every image not scored
        (unreadable: the reader's message; gray: it has no colour to compare with).
    """
    rows, skipped = [], []
    for f in progress_bar(files, desc="score folder", unit="img", disable=not progress):
        try:
            rgb = read_image(f)
        except ImageError as exc:
            skipped.append({"file": str(f), "reason": str(exc)})
            continue
        if is_grayscale(rgb):
            skipped.append({"file": str(f), "reason": "grayscale: no colour to score against"})
            continue
        h, w = rgb.shape[:2]
        if max_side and max(h, w) > max_side:
            k = max_side / max(h, w)
            rgb = imresize(rgb, (max(round(h * k), 1), max(round(w * k), 1)))
        pred = colorize(rgb)
        if pred.shape != rgb.shape:
            raise ValueError(f"{f}: the colorizer returned {pred.shape} for {rgb.shape}")
        m = metrics.compute(pred[None], rgb[None], names, per="image", epsilon=epsilon)
        rows.append({"file": str(f), "height": rgb.shape[0], "width": rgb.shape[1], **m})
    return worst_first(rows), skipped


def summarize_rows(rows: list[dict]) -> dict[str, float]:
    """Means of the metric columns of :func:`score_folder` rows (``images``: how many)."""
    keys = [k for k in (rows[0] if rows else {}) if k in metrics.METRICS]
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys} if rows else {}
    out["images"] = len(rows)
    return finite_or_none(out)
