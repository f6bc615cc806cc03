"""Image-quality metrics (docs/architecture.md). All take 8-bit sRGB unless stated.

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
    """Mean absolute error over all pixels and channels, in 8-bit levels (Singh et al., eq. 5)."""
    p, t = _pair(pred, target)
    return float(np.abs(p - t).mean())


def epsilon_accuracy(pred: np.ndarray, target: np.ndarray, epsilon: float = 0.05) -> float:
    """Percent of pixels whose error is <= ``epsilon * 255`` in every channel (Singh et al., eq. 6).

    Returns:
        A percentage in [0, 100] (Singh et al. reports e.g. 31.97 for U-Net + L1).
    """
    p, t = _pair(pred, target)
    ok = (np.abs(p - t) <= epsilon * 255.0).all(axis=-1)
    return float(ok.mean() * 100.0)


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


def delta_e2000_lab(lab_ref: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of CIE Lab colours (kL = kC = kH = 1, ``skimage.color.deltaE_ciede2000``);
    checked against Sharma, Wu & Dalal 2005's published test pairs.

    Args:
        lab_ref, lab: CIE Lab values ``... x 3`` (L in [0, 100]) of the same shape.

    Returns:
        The differences, shape ``...`` (float64).
    """
    from skimage.color import deltaE_ciede2000

    return deltaE_ciede2000(np.asarray(lab_ref, np.float64), np.asarray(lab, np.float64))


def delta_e2000(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (:func:`delta_e2000_lab` of ``skimage.color.rgb2lab``) between uint8
    sRGB images.

    Weight-free perceptual colour error: 0 for identical images, ~2.3 is a just-noticeable difference.
    """
    from skimage.color import rgb2lab

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


AB_RANGE = 110.0  # |a|, |b| of sRGB colours stay below this (the pix2pix normalisation, huescale.color)


def ab_values(images: np.ndarray) -> np.ndarray:
    """The CIE a*b* (D65) of every pixel of ``N x H x W x 3`` uint8 sRGB images: ``(N*H*W) x 2`` float32.

    Converted with ``skimage.color.rgb2lab`` one image at a time (bounded memory).
    """
    from skimage.color import rgb2lab

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


def histogram_intersection(pred: np.ndarray, target: np.ndarray, bin_width: float = 10.0) -> float:
    """Intersection ``sum(min(p, q))`` of the a*b* histograms of two image sets: 1 = the same colour
    distribution, 0 = no colour in common. Weight-free, so it shows a uniform tint (all pixels in a few
    brown bins) that per-pixel errors hide (Swain & Ballard 1991)."""
    return float(np.minimum(ab_histogram(pred, bin_width), ab_histogram(target, bin_width)).sum())


def chroma_emd(pred: np.ndarray, target: np.ndarray, max_pixels: int = 200_000, seed: int = 0) -> float:
    """Earth mover's distance between the chroma ``C* = sqrt(a*^2 + b*^2)`` distributions of two image sets,
    in a*b* units (``scipy.stats.wasserstein_distance``; pixels subsampled to ``max_pixels`` with a fixed seed).

    0 when the sets are equally saturated; a desaturated (sepia or gray) output scores about the mean chroma
    of the truth. Weight-free, like :func:`histogram_intersection`.
    """
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)

    def chroma(images: np.ndarray) -> np.ndarray:
        c = np.hypot(*ab_values(images).T)
        return rng.choice(c, max_pixels, replace=False) if len(c) > max_pixels else c

    return float(wasserstein_distance(chroma(pred), chroma(target)))


def colour_distribution(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Set-level colour metrics of a prediction against its truth (both ``N x H x W x 3`` uint8 sRGB):
    colourfulness of each and their ratio (Hasler & Süsstrunk 2003), a*b* histogram intersection and
    chroma EMD."""
    c_pred, c_true = colorfulness(pred), colorfulness(target)
    return {"colorfulness": c_pred, "colorfulness_truth": c_true,
            "colorfulness_ratio": c_pred / c_true if c_true > 0 else float("nan"),
            "hist_intersection": histogram_intersection(pred, target), "chroma_emd": chroma_emd(pred, target)}


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


def fid_weights_path(weights: str | Path | None = None) -> Path:
    """The Inception weights file for FID: ``weights`` if given, else where pytorch-fid looks for it
    (``<torch hub dir>/checkpoints/pt_inception-2015-12-05-6726825d.pth``, i.e. under ``$TORCH_HOME``)."""
    if weights:
        return Path(weights).expanduser()
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of a uint8 image array's shape and bytes: the content key of cached statistics."""
    import hashlib

    a = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{a.dtype}{a.shape}".encode())
    h.update(a.data.cast("B"))
    return h.hexdigest()


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance of two Gaussians: ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``.

    The formula of FID (Heusel et al. 2017). ``tr((S1 S2)^(1/2))`` is the sum of the square
    roots of the eigenvalues of ``S1 S2``, which equal those of the symmetric ``A S2 A`` with
    ``A = S1^(1/2)`` (``AB`` and ``BA`` share their non-zero eigenvalues), so two symmetric
    eigendecompositions replace the Schur-based ``scipy.linalg.sqrtm`` of pytorch-fid's
    ``calculate_frechet_distance``: the same value (tested against it) in a second instead of a
    minute for 2048 x 2048 covariances on 2 CPU cores, and exact for the singular covariances
    of sets smaller than 2048 images (where pytorch-fid adds an offset and calls sqrtm again).

    Args:
        mu1, mu2: feature means, shape ``D``, float64.
        sigma1, sigma2: feature covariances, ``D x D``, symmetric positive semi-definite.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"Gaussians of different dimensions: {mu1.shape} / {mu2.shape}, {s1.shape} / {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ s2 @ root
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


class FIDWeightsError(RuntimeError):
    """The FID Inception weights file is not a plain state dict of tensors (or not the FID Inception's);
    names the file."""


def fid_inception(weights: str | Path):
    """pytorch-fid's ``InceptionV3`` (pool3, 2048-d output) with weights loaded safely from ``weights``.

    pytorch-fid's own loader (``fid_inception_v3`` -> ``load_state_dict_from_url``) unpickles the
    file with ``weights_only=False``, which runs any code a crafted file carries. Here the FID
    Inception is built without it (the same modules: torchvision's Inception-v3 with
    pytorch-fid's FID blocks) and the file is read with ``torch.load(weights_only=True)``, which
    accepts only tensors and plain containers.

    Args:
        weights: ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release) or a file of
            the same state dict.

    Returns:
        An ``InceptionV3`` module (eval mode, no gradients): ``N x 3 x H x W`` float in [0, 1] ->
        ``[N x 2048 x 1 x 1]``.

    Raises:
        FIDWeightsError: the file is not loadable as weights only (e.g. a pickle with code in it),
            not a dict of tensors, or its keys/shapes do not match the FID Inception.
    """
    import torch
    from pytorch_fid import inception as I
    from torch import nn

    path = Path(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, ... for a bad file
        raise FIDWeightsError(f"{path}: not a plain PyTorch state dict of tensors ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); it was not executed. Replace it with "
                              f"{FID_WEIGHTS_FILE} from the pytorch-fid release (evaluate.fid_weights)") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FIDWeightsError(f"{path}: expected a dict of tensors (a state dict), got {type(state).__name__}; "
                              f"use {FID_WEIGHTS_FILE} from the pytorch-fid release (evaluate.fid_weights)")
    net = I._inception_v3(num_classes=1008, aux_logits=False, weights=None)  # as pytorch-fid's fid_inception_v3
    net.Mixed_5b = I.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = I.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = I.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = I.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = I.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = I.FIDInceptionE_1(1280)
    net.Mixed_7c = I.FIDInceptionE_2(2048)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise FIDWeightsError(f"{path}: not the FID Inception's weights ({str(exc).splitlines()[0][:200]}); "
                              f"use {FID_WEIGHTS_FILE} from the pytorch-fid release (evaluate.fid_weights)") from None
    model = I.InceptionV3.__new__(I.InceptionV3)  # pytorch-fid's forward, without its weight loader
    nn.Module.__init__(model)
    model.resize_input, model.normalize_input = True, True
    model.output_blocks, model.last_needed_block = [3], 3
    model.blocks = nn.ModuleList([
        nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
        nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
        nn.Sequential(net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c,
                      net.Mixed_6d, net.Mixed_6e),
        nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1))),
    ])
    for param in model.parameters():
        param.requires_grad = False
    return model.eval()


class FID:
    """Frechet Inception Distance with pytorch-fid (Heusel et al. 2017; Singh et al., eq. 8).

    Inception-v3 pool3 features (2048-d) of images resized to 299 inside the
    network. Weights come from ``weights`` (a path param) or the torch hub cache
    (``fid_weights_path()``); nothing is downloaded here, so check :meth:`available`
    first. The statistics (mean, covariance) of a real image set are cached in
    ``cache_dir`` under the SHA-256 of the images' bytes and of the weights file's
    size and modification time, so a test set is embedded once across methods,
    stages and runs.

    Args:
        device: torch device for the Inception network.
        batch_size: images per forward pass.
        weights: path of the weights file, or None for the torch hub cache.
        cache_dir: folder of cached real-set statistics (``.npz``), or None for no cache.

    Raises:
        FileNotFoundError: at construction, when the weights file is absent (names it).
        FIDWeightsError: the weights file is not a plain state dict of the FID Inception (it is
            never unpickled with code execution; see :func:`fid_inception`).
    """

    def __init__(self, device: str = "cpu", batch_size: int = 32, weights: str | Path | None = None,
                 cache_dir: str | Path | None = None):
        import torch

        path = fid_weights_path(weights)
        if not path.is_file():
            raise FileNotFoundError(self.missing_reason(weights))
        self.torch = torch
        self.device, self.batch_size = torch.device(device), batch_size
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        st = path.stat()
        self.weights_id = f"{path.name}:{st.st_size}:{int(st.st_mtime)}"
        self.model = fid_inception(path).to(self.device).eval()
        self.cache_hits = 0

    @staticmethod
    def missing_reason(weights: str | Path | None = None) -> str:
        """Why FID cannot be computed on this machine, and what to do."""
        return (f"Inception weights for FID not found at {fid_weights_path(weights)} (no download here); "
                f"place {FID_WEIGHTS_FILE} from the pytorch-fid release there, set TORCH_HOME, "
                f"or set evaluate.fid_weights")

    @classmethod
    def available(cls, weights: str | Path | None = None) -> bool:
        """Whether the weights file is present."""
        return fid_weights_path(weights).is_file()

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

    def statistics(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``2048`` and covariance ``2048 x 2048`` (float64) of the pool3 features of uint8 images."""
        a = self.activations(images)
        return a.mean(0), np.cov(a, rowvar=False)

    def real_statistics(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`statistics` of a real set, read from / written to the content-hash cache."""
        if self.cache_dir is None:
            return self.statistics(images)
        import hashlib

        key = hashlib.sha256(f"{images_digest(images)}|{self.weights_id}".encode()).hexdigest()[:32]
        path = self.cache_dir / f"fid_real_{key}.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    self.cache_hits += 1
                    return z["mu"], z["sigma"]
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
        mu, sigma = self.statistics(images)
        from huescale.atomic import atomic_path

        with atomic_path(path, ".npz") as tmp:  # process-private temporary: concurrent evaluations never collide
            np.savez(tmp, mu=mu, sigma=sigma)
        return mu, sigma

    def __call__(self, generated: np.ndarray, real: np.ndarray) -> float:
        """FID between generated and real uint8 image sets (at least 2 each; small sets are biased high)."""
        mu_g, s_g = self.statistics(generated)
        mu_r, s_r = self.real_statistics(real)
        value = frechet_distance(mu_g, s_g, mu_r, s_r)
        return float(value) if math.isfinite(value) else float("nan")
