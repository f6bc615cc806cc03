"""Image-quality metrics (DESIGN.md §7). All take 8-bit sRGB unless stated.

Arrays are ``N x H x W x 3`` uint8 (NumPy, channels last, as images are stored).
Per-image values are averaged over the N images.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from skimage.metrics import structural_similarity

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    return pred.astype(np.float64), target.astype(np.float64)


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all pixels and channels, in 8-bit levels (seed 004, eq. 5)."""
    p, t = _pair(pred, target)
    return float(np.abs(p - t).mean())


def epsilon_accuracy(pred: np.ndarray, target: np.ndarray, epsilon: float = 0.05) -> float:
    """Percent of pixels whose error is <= ``epsilon * 255`` in every channel (seed 004, eq. 6).

    Returns:
        A percentage in [0, 100] (seed 004 reports e.g. 31.97 for U-Net + L1).
    """
    p, t = _pair(pred, target)
    ok = (np.abs(p - t) <= epsilon * 255.0).all(axis=-1)
    return float(ok.mean() * 100.0)


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean over images of ``10 log10(range^2 / MSE)`` in dB (seed 004, eq. 7).

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


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004) with a Gaussian window, sigma 1.5, as scikit-image computes it.

    Accepts ``N x H x W x 3`` (colour, channel-averaged) or ``N x H x W`` (one channel).
    """
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


def delta_e2000(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``) between uint8 sRGB images.

    Weight-free perceptual colour error: 0 for identical images, ~2.3 is a just-noticeable difference.
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    p, t = _pair(pred, target)
    return float(np.mean([deltaE_ciede2000(rgb2lab(b / 255.0), rgb2lab(a / 255.0)).mean() for a, b in zip(p, t)]))


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


def image_metrics(pred: np.ndarray, target: np.ndarray, epsilon: float = 0.05) -> dict[str, float]:
    """MAE, epsilon-accuracy (%), PSNR (dB), SSIM, Delta-E 2000 and colorfulness of ``N x H x W x 3`` uint8."""
    return {"mae": mae(pred, target), "epsilon_accuracy": epsilon_accuracy(pred, target, epsilon),
            "psnr": psnr(pred, target), "ssim": ssim(pred, target), "delta_e2000": delta_e2000(pred, target),
            "colorfulness": colorfulness(pred)}


def per_image_metrics(pred: np.ndarray, target: np.ndarray, epsilon: float = 0.05) -> list[dict[str, float]]:
    """The metrics of :func:`image_metrics` for each image separately (for finding the worst cases)."""
    return [image_metrics(p[None], t[None], epsilon) for p, t in zip(pred, target)]


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
    from huescale.data.images import read_image
    from huescale.resize import imresize

    ps, ss = [], []
    for f in hr_files:
        hr = read_image(f)
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        lr = imresize(hr, (hr.shape[0] // scale, hr.shape[1] // scale))
        sr = imresize(lr, hr.shape[:2]) if upscale is None else upscale(lr)
        p, s = sr_psnr_ssim(sr[None], hr[None], border=scale)
        ps.append(p)
        ss.append(s)
    return {"psnr_y": float(np.mean(ps)), "ssim_y": float(np.mean(ss)), "images": len(ps)}


def fid_weights_path() -> Path:
    """Where pytorch-fid looks for its Inception weights: ``<torch hub dir>/checkpoints/``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


class FID:
    """Frechet Inception Distance with pytorch-fid (Heusel et al. 2017; seed 004, eq. 8).

    Inception-v3 pool3 features (2048-d) of images resized to 299 inside the
    network. Weights come from the torch hub cache (``fid_weights_path()``);
    nothing is downloaded here, so check :meth:`available` first.

    Args:
        device: torch device for the Inception network.
        batch_size: images per forward pass.

    Raises:
        FileNotFoundError: at construction, when the weights file is absent (names it).
    """

    def __init__(self, device: str = "cpu", batch_size: int = 32):
        import torch
        from pytorch_fid.inception import InceptionV3

        path = fid_weights_path()
        if not path.is_file():
            raise FileNotFoundError(self.missing_reason())
        self.torch = torch
        self.device, self.batch_size = torch.device(device), batch_size
        block = InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        self.model = InceptionV3([block]).to(self.device).eval()

    @staticmethod
    def missing_reason() -> str:
        """Why FID cannot be computed on this machine, and what to do."""
        return (f"Inception weights for FID not found at {fid_weights_path()} (no download here); "
                f"place {FID_WEIGHTS_FILE} from the pytorch-fid release there or set TORCH_HOME")

    @classmethod
    def available(cls) -> bool:
        """Whether the weights file is present."""
        return fid_weights_path().is_file()

    def activations(self, images: np.ndarray) -> np.ndarray:
        """Pool3 features ``N x 2048`` float64 of ``N x H x W x 3`` uint8 images."""
        torch = self.torch
        feats = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + self.batch_size])).permute(0, 3, 1, 2)
                x = x.to(self.device).float() / 255.0
                feats.append(self.model(x)[0].squeeze(-1).squeeze(-1).double().cpu().numpy())
        return np.concatenate(feats)

    def __call__(self, generated: np.ndarray, real: np.ndarray) -> float:
        """FID between two sets of uint8 images (at least 2 each; small sets are biased high)."""
        from pytorch_fid.fid_score import calculate_frechet_distance

        a, b = self.activations(generated), self.activations(real)
        value = calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        return float(value) if math.isfinite(value) else float("nan")
