"""Frechet Inception Distance (Heusel et al. 2017; Singh et al., eq. 8) with pytorch-fid's Inception-v3.

The network is pytorch-fid's, its weights read without unpickling code (:func:`fid_inception`); the Frechet
distance of two Gaussians is computed with two symmetric eigendecompositions (:func:`frechet_distance`); real-set
statistics are cached by content (:class:`FID`). The metric table's ``fid`` entry (:mod:`huescale.metrics`)
calls an :class:`FID` object; nothing here is downloaded.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from huescale.atomic import atomic_path

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


def fid_weights_path(weights: str | Path | None = None) -> Path:
    """The Inception weights file for FID: ``weights`` if given, else where pytorch-fid looks for it
    (``<torch hub dir>/checkpoints/pt_inception-2015-12-05-6726825d.pth``, i.e. under ``$TORCH_HOME``)."""
    if weights:
        return Path(weights).expanduser()

    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of a uint8 image array's shape and bytes: the content key of cached statistics."""
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


def fid_inception_v3():
    """pytorch-fid's FID Inception-v3 (torchvision's Inception-v3 with its FID blocks, 1008 classes), weights not
    loaded (as pytorch-fid's ``fid_inception_v3`` builds it before its unsafe loader)."""
    from pytorch_fid import inception as I  # lazy: pytorch_fid imports torchvision (~4 s), only where FID runs

    net = I._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = I.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = I.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = I.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = I.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = I.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = I.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = I.FIDInceptionE_1(1280)
    net.Mixed_7c = I.FIDInceptionE_2(2048)
    return net


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
    from pytorch_fid import inception as I  # lazy: pytorch_fid imports torchvision (~4 s), only where FID runs

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
    net = fid_inception_v3()
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

        with atomic_path(path, ".npz") as tmp:  # process-private temporary: concurrent evaluations never collide
            np.savez(tmp, mu=mu, sigma=sigma)
        return mu, sigma

    def __call__(self, generated: np.ndarray, real: np.ndarray) -> float:
        """FID between generated and real uint8 image sets (at least 2 each; small sets are biased high)."""
        mu_g, s_g = self.statistics(generated)
        mu_r, s_r = self.real_statistics(real)
        value = frechet_distance(mu_g, s_g, mu_r, s_r)
        return float(value) if math.isfinite(value) else float("nan")
