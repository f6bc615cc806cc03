"""Image-quality metrics and the metric table (docs/architecture.md, "How to add a metric").

Arrays are ``N x H x W x 3`` uint8 sRGB (NumPy, channels last, as images are stored) unless stated.

Every metric huescale reports is declared once, with :func:`register_metric` on its function: its name (the key
in the per-image CSV, ``metrics.json``, MLflow and the reports), whether it is a per-image value (averaged over
a set; the CSV has a column for it) or a set value (a distribution over all images), its direction, its
format, label, unit and source. Everything that shows metrics reads this table (:data:`METRICS`); which of them
a run computes is ``evaluate.metrics`` in ``params.yaml`` (default: all). Adding a metric is one function and
its decorator here, and its name in ``evaluate.metrics`` when that list is not the default.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    Attributes:
        name: the key everywhere (CSV column, ``metrics.json``, MLflow ``<section>/<name>``, report column).
        fn: ``fn(pred, target, **{option: value})`` -> float (or None when it cannot be computed, e.g. FID
            without weights); ``pred``, ``target``: ``N x H x W x 3`` uint8 sRGB of the same shape.
        per: ``"image"`` (a value per photograph; the set's value is their mean, the CSV has a column) or
            ``"set"`` (one value for a set's distribution, e.g. FID, colourfulness ratio).
        better: ``"higher"``, ``"lower"`` or ``"none"`` (neither: colourfulness is judged against the truth's).
        decimals: digits shown in reports and tables.
        label: the column heading (plain text; HTML entities allowed).
        unit: e.g. ``"dB"``, ``"%"``, ``"8-bit levels"``, ``""`` for none.
        source: the paper or document that defines it.
        options: the ``evaluate`` params the function takes by keyword (e.g. ``("epsilon",)``), or ``"fid"``
            for a set metric that needs the :class:`huescale.evaluation.fid.FID` network.
    """

    name: str
    fn: Callable[..., float | None]
    per: str
    better: str
    decimals: int
    label: str
    unit: str
    source: str
    options: tuple[str, ...] = ()

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better), ``↓`` (lower) or ``""``."""
        return {"higher": "\u2191", "lower": "\u2193"}.get(self.better, "")

    def heading(self) -> str:
        """Label, unit and direction, e.g. ``PSNR (dB) ↑``."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {self.arrow}".rstrip()

    def format(self, value: Any) -> str:
        """``value`` as every table shows this metric: :func:`format_value` with :attr:`decimals` digits."""
        return format_value(value, self.decimals)


def format_value(value: Any, decimals: int) -> str:
    """The one way a number is shown in a table (reports, Markdown tables, the model card).

    Args:
        value: a real number (Python or NumPy), an integer, a string, or None.
        decimals: digits after the point for non-integer numbers.

    Returns:
        ``—`` for None, NaN or ±inf; integers and strings as they are; other real numbers with ``decimals``
        digits (``0.1234`` with 2 → ``"0.12"``).
    """
    if value is None:
        return "\u2014"
    if isinstance(value, (bool, str, numbers.Integral)) or not isinstance(value, numbers.Real):
        return str(value)
    if not math.isfinite(float(value)):
        return "\u2014"
    return f"{float(value):.{decimals}f}"


METRICS: dict[str, MetricSpec] = {}
PER = ("image", "set")
BETTER = ("higher", "lower", "none")


def register_metric(name: str, *, per: str, better: str, decimals: int, label: str, unit: str = "",
                    source: str = "", options: tuple[str, ...] = ()) -> Callable:
    """Class-free registry decorator (the loss registry's pattern): declare the decorated function a metric.

    The declaration order is the order of columns in CSVs and reports.

    Raises:
        ValueError: ``name`` is registered twice, or ``per`` / ``better`` is not one of :data:`PER` /
            :data:`BETTER`.
    """
    if per not in PER or better not in BETTER:
        raise ValueError(f"metric {name!r}: per must be one of {PER}, better one of {BETTER}")

    def deco(fn: Callable) -> Callable:
        if name in METRICS:
            raise ValueError(f"metric name {name!r} is registered twice")
        METRICS[name] = MetricSpec(name, fn, per, better, decimals, label, unit, source, tuple(options))
        return fn

    return deco


def select(names: Iterable[str] | None = None, per: str | None = None) -> list[MetricSpec]:
    """The table's rows named by ``names`` (None: all), in declaration order, optionally only ``per``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    wanted = list(METRICS) if names is None else list(names)
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return [m for n, m in METRICS.items() if n in wanted and (per is None or m.per == per)]


def _call(m: MetricSpec, pred: np.ndarray, target: np.ndarray, options: dict[str, Any]) -> float | None:
    v = m.fn(pred, target, **{o: options[o] for o in m.options})
    return None if v is None else float(v)


def compute(pred: np.ndarray, target: np.ndarray, names: Iterable[str] | None = None, per: str | None = None,
            epsilon: float = 0.05, fid: Any = None) -> dict[str, float | None]:
    """The selected metrics of a set, each computed once on the whole set (a per-image metric: the mean over
    the photographs, which all have the same size within a set).

    Args:
        pred, target: ``N x H x W x 3`` uint8 sRGB, the same shape.
        names: metric names (None: all registered); per: only ``"image"`` or ``"set"`` ones (None: both).
        epsilon: the epsilon-accuracy threshold, a fraction of 255 (``evaluate.epsilon``).
        fid: a :class:`huescale.evaluation.fid.FID`, or None (``fid`` is then None: not computed, never made up).

    Returns:
        name -> value (float, or None where it cannot be computed), in declaration order.

    Raises:
        KeyError: an unknown metric name.
    """
    options = {"epsilon": epsilon, "fid": fid}
    return {m.name: _call(m, pred, target, options) for m in select(names, per)}


def per_image(pred: np.ndarray, target: np.ndarray, names: Iterable[str] | None = None,
              epsilon: float = 0.05) -> list[dict[str, float | None]]:
    """The selected per-image metrics of each photograph separately (the per-image CSV; worst cases first
    is the caller's order): one dict per photograph, name -> value."""
    specs, options = select(names, per="image"), {"epsilon": epsilon}
    return [{m.name: _call(m, p[None], t[None], options) for m in specs} for p, t in zip(pred, target)]


def columns(names: Iterable[str] | None = None, per: str | None = None) -> list[str]:
    """The names of :func:`select` (e.g. the per-image CSV's metric columns)."""
    return [m.name for m in select(names, per)]


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    return pred.astype(np.float64), target.astype(np.float64)


@register_metric("mae", per="image", better="lower", decimals=2, label="MAE", unit="8-bit levels",
                 source="Singh et al., eq. 5")
def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all pixels and channels, in 8-bit levels (Singh et al., eq. 5)."""
    p, t = _pair(pred, target)
    return float(np.abs(p - t).mean())


@register_metric("epsilon_accuracy", per="image", better="higher", decimals=2, label="ε-accuracy", unit="%",
                 source="Singh et al., eq. 6", options=("epsilon",))
def epsilon_accuracy(pred: np.ndarray, target: np.ndarray, epsilon: float = 0.05) -> float:
    """Percent of pixels whose error is <= ``epsilon * 255`` in every channel (Singh et al., eq. 6).

    Returns:
        A percentage in [0, 100] (Singh et al. reports e.g. 31.97 for U-Net + L1).
    """
    p, t = _pair(pred, target)
    ok = (np.abs(p - t) <= epsilon * 255.0).all(axis=-1)
    return float(ok.mean() * 100.0)


@register_metric("psnr", per="image", better="higher", decimals=2, label="PSNR", unit="dB",
                 source="Singh et al., eq. 7")
def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean over images of ``10 log10(range^2 / MSE)`` in dB (Singh et al., eq. 7).

    Accepts ``N x H x W [x C]`` arrays of any numeric dtype. An image with
    MSE = 0 scores ``inf`` (identical images), so the mean is then ``inf``.
    """
    p, t = pred.astype(np.float64), target.astype(np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    mse = ((p - t) ** 2).reshape(p.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        per_image = 10.0 * np.log10(data_range**2 / mse)
    return float(per_image.mean())


@register_metric("ssim", per="image", better="higher", decimals=3, label="SSIM", source="Wang et al. 2004")
def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004) with a Gaussian window, sigma 1.5, as scikit-image computes it.

    Accepts ``N x H x W x 3`` (colour, channel-averaged) or ``N x H x W`` (one channel).
    """
    from skimage.metrics import structural_similarity  # lazy: scipy.ndimage, ~1 s of import, only where SSIM runs

    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    if pred.ndim == 4:
        kw["channel_axis"] = -1
    vals = [structural_similarity(t.astype(np.float64), p.astype(np.float64), **kw) for p, t in zip(pred, target)]
    return float(np.mean(vals))


def y_channel(rgb: np.ndarray, round_: bool = False) -> np.ndarray:
    """8-bit sRGB ``... x 3`` -> BT.601 luma Y in [16, 235], float64 (MATLAB ``rgb2ycbcr``).

    With ``round_`` the result is rounded to integers, as MATLAB's ``rgb2ycbcr``
    returns uint8 for uint8 input.
    """
    y = rgb.astype(np.float64) / 255.0 @ np.array([65.481, 128.553, 24.966]) + 16.0
    return np.round(y) if round_ else y


def sr_psnr_ssim(pred: np.ndarray, target: np.ndarray, border: int) -> tuple[float, float]:
    """Super-resolution PSNR/SSIM on Y with ``border`` pixels cropped (published x4 table convention).

    Y is computed and rounded as MATLAB's ``rgb2ycbcr`` on uint8 images; SSIM
    uses the 11x11 Gaussian window (sigma 1.5) of Wang et al.'s reference code.
    With these, bicubic x4 gives 28.38 dB / 0.8105 on Set5 and 25.96 / 0.6674 on
    BSD100 (published: 28.42 / 0.8104 and 25.96 / 0.6675).

    Args:
        pred, target: ``N x H x W x 3`` uint8 arrays of the same shape.
        border: pixels cropped on each side (the scale factor).

    Returns:
        ``(psnr_y in dB, ssim_y)`` averaged over the N images.
    """
    yp, yt = y_channel(pred, True), y_channel(target, True)
    if border:
        yp, yt = yp[:, border:-border, border:-border], yt[:, border:-border, border:-border]
    return psnr(yp, yt), ssim(yp, yt)


def delta_e2000_lab(lab_ref: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of CIE Lab colours (kL = kC = kH = 1, ``skimage.color.deltaE_ciede2000``);
    checked against Sharma, Wu & Dalal 2005's published test pairs.

    Args:
        lab_ref, lab: CIE Lab values ``... x 3`` (L in [0, 100]) of the same shape.

    Returns:
        The differences, shape ``...`` (float64).
    """
    from skimage.color import deltaE_ciede2000  # lazy: skimage.color ~0.7 s; config imports this module

    return deltaE_ciede2000(np.asarray(lab_ref, np.float64), np.asarray(lab, np.float64))


@register_metric("delta_e2000", per="image", better="lower", decimals=2, label="ΔE2000", unit="Lab",
                 source="CIEDE2000 (Sharma, Wu & Dalal 2005)")
def delta_e2000(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (:func:`delta_e2000_lab` of ``skimage.color.rgb2lab``) between uint8
    sRGB images.

    Weight-free perceptual colour error: 0 for identical images, ~2.3 is a just-noticeable difference.
    """
    from skimage.color import rgb2lab  # lazy: skimage.color ~0.7 s; config imports this module

    p, t = _pair(pred, target)
    return float(np.mean([delta_e2000_lab(rgb2lab(b / 255.0), rgb2lab(a / 255.0)).mean() for a, b in zip(p, t)]))


def colorfulness(images: np.ndarray) -> float:
    """Mean colorfulness M of uint8 sRGB images (Hasler & Suesstrunk 2003, eq. 3).

    ``rg = R - G``, ``yb = (R + G) / 2 - B``; ``M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)``
    in 8-bit units: 0 for gray images, ~20-60 for ordinary photographs. Weight-free, so it shows
    washed-out (sepia) colorizations where FID cannot be computed.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    axes = (1, 2)
    m = np.sqrt(rg.std(axes) ** 2 + yb.std(axes) ** 2) + 0.3 * np.sqrt(rg.mean(axes) ** 2 + yb.mean(axes) ** 2)
    return float(m.mean())


@register_metric("colorfulness", per="image", better="none", decimals=1, label="colourfulness",
                 source="Hasler & Suesstrunk 2003, eq. 3")
def output_colorfulness(pred: np.ndarray, target: np.ndarray) -> float:
    """:func:`colorfulness` of the output (judged against the truth's: :func:`colorfulness_ratio`)."""
    return colorfulness(pred)


@register_metric("colorfulness_truth", per="image", better="none", decimals=1, label="truth's colourfulness",
                 source="Hasler & Suesstrunk 2003, eq. 3")
def colorfulness_truth(pred: np.ndarray, target: np.ndarray) -> float:
    """:func:`colorfulness` of the ground truth (the scale against which an output's colourfulness is read)."""
    return colorfulness(target)


@register_metric("colorfulness_ratio", per="set", better="none", decimals=2, label="colourfulness / truth's",
                 source="Hasler & Suesstrunk 2003; DDColor (Kang et al. 2023) reports both")
def colorfulness_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean colourfulness of the outputs over the truth's: 1 = as colourful, far below 1 = a sepia tint;
    NaN when the truth is gray."""
    c_true = colorfulness(target)
    return colorfulness(pred) / c_true if c_true > 0 else float("nan")


AB_RANGE = 110.0  # |a|, |b| of sRGB colours stay below this (the pix2pix normalisation, huescale.color)


def ab_values(images: np.ndarray) -> np.ndarray:
    """The CIE a*b* (D65) of every pixel of ``N x H x W x 3`` uint8 sRGB images: ``(N*H*W) x 2`` float32.

    Converted with ``skimage.color.rgb2lab`` one image at a time (bounded memory).
    """
    from skimage.color import rgb2lab  # lazy: skimage.color ~0.7 s; config imports this module

    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    return np.concatenate([rgb2lab(im).reshape(-1, 3)[:, 1:].astype(np.float32) for im in x]) if len(x) else \
        np.zeros((0, 2), np.float32)


def ab_histogram(images: np.ndarray, bin_width: float = 10.0) -> np.ndarray:
    """Normalised 2-D histogram of the a*b* of all pixels of a set (``N x H x W x 3`` uint8 sRGB).

    Bins of ``bin_width`` a*b* units over [-110, 110]^2 (22 x 22 at width 10, the grid of Zhang et al.
    2016); values outside are clipped into the edge bins. Returns a ``K x K`` float64 array summing to 1.
    """
    ab = np.clip(ab_values(images), -AB_RANGE, AB_RANGE - 1e-3)
    edges = np.arange(-AB_RANGE, AB_RANGE + bin_width / 2, bin_width)
    h, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=[edges, edges])
    return h / max(h.sum(), 1.0)


@register_metric("hist_intersection", per="set", better="higher", decimals=3, label="a*b* histogram intersection",
                 source="Swain & Ballard 1991")
def histogram_intersection(pred: np.ndarray, target: np.ndarray, bin_width: float = 10.0) -> float:
    """Intersection ``sum(min(p, q))`` of the a*b* histograms of two image sets: 1 = the same colour
    distribution, 0 = no colour in common. Weight-free, so it shows a uniform tint (all pixels in a few
    brown bins) that per-pixel errors hide (Swain & Ballard 1991)."""
    return float(np.minimum(ab_histogram(pred, bin_width), ab_histogram(target, bin_width)).sum())


@register_metric("chroma_emd", per="set", better="lower", decimals=2, label="chroma EMD", unit="a*b*",
                 source="earth mover's distance of C* (scipy.stats.wasserstein_distance)")
def chroma_emd(pred: np.ndarray, target: np.ndarray, max_pixels: int = 200_000, seed: int = 0) -> float:
    """Earth mover's distance between the chroma ``C* = sqrt(a*^2 + b*^2)`` distributions of two image sets,
    in a*b* units (``scipy.stats.wasserstein_distance``; pixels subsampled to ``max_pixels`` with a fixed seed).

    0 when the sets are equally saturated; a desaturated (sepia or gray) output scores about the mean chroma
    of the truth. Weight-free, like :func:`histogram_intersection`.
    """
    from scipy.stats import wasserstein_distance  # lazy: ~1.7 s, only for this metric

    rng = np.random.default_rng(seed)

    def chroma(images: np.ndarray) -> np.ndarray:
        c = np.hypot(*ab_values(images).T)
        return rng.choice(c, max_pixels, replace=False) if len(c) > max_pixels else c

    return float(wasserstein_distance(chroma(pred), chroma(target)))


@register_metric("fid", per="set", better="lower", decimals=2, label="FID",
                 source="Heusel et al. 2017; Singh et al., eq. 8", options=("fid",))
def fid(pred: np.ndarray, target: np.ndarray, fid: Any = None) -> float | None:
    """Frechet Inception Distance of the outputs to the truth with ``fid`` (a :class:`huescale.evaluation.fid.FID`);
    None without one or for fewer than 2 images (never a made-up number)."""
    if fid is None or len(target) < 2:
        return None
    return fid(pred, target)
