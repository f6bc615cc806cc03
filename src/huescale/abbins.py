"""Quantised a*b* colours: the gamut bins, their rebalancing prior, soft encoding and annealed-mean decoding.

Colour classification (Zhang, Isola & Efros 2016, "Colorful Image Colorization", ECCV; docs/sources.md)
turns colorization into a per-pixel classification over the a*b* plane cut into cells of ``grid`` = 10
Lab units. Predicting a distribution instead of regressing one ab value is what stops the mean-seeking
"sepia" of L1/L2 regression, *if* rare saturated colours get their weight back: the loss weights a pixel
by ``w(q) ~ 1 / ((1 - lambda) p~(q) + lambda / Q)``, with ``p~`` the training pixels' colour prior
smoothed by a Gaussian (sigma 5) and lambda = 0.5, normalised so that ``E_p~[w] = 1`` (Zhang et al. eq. 4).
The target of each pixel is its 5 nearest bin centres weighted by a Gaussian of sigma 5 (soft encoding),
and a prediction is decoded by the annealed mean ``sum_q softmax(z / T)_q c_q`` (eq. 5; T = 0.38 in the
paper: T = 1 is the distribution's mean, T -> 0 its mode).

Units: bin centres are kept in normalised ab (``ab / 110``, :func:`huescale.color.normalize_ab`), the units
every colorizer predicts in; sigmas and the grid are in raw Lab units as the paper gives them.

The bins are the grid cells that sRGB can reach (Zhang et al.'s "in-gamut" bins: 313 at grid 10), found
from a 64-level sampling of the sRGB cube, so Q is fixed by ``grid`` alone and a model's size does not
depend on its data. The prior is data: :meth:`ABBins.fit` counts the training pixels' nearest bins; it is
deterministic (no sampling) and lives in buffers, so it travels in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from huescale.color import AB_SCALE, rgb_to_lab

# Zhang et al. 2016, section 2 / eq. 4-5: soft encoding to k = 5 neighbours with sigma = 5, prior smoothed with
# sigma = 5, uniform mixing lambda = 0.5, annealed-mean temperature 0.38.
GRID, SOFT_K, SOFT_SIGMA, PRIOR_SIGMA, PRIOR_LAMBDA, ANNEALED_T = 10.0, 5, 5.0, 5.0, 0.5, 0.38


@lru_cache(maxsize=4)
def gamut_centers(grid: float = GRID, levels: int = 64) -> torch.Tensor:
    """Centres of the ``grid``-spaced a*b* cells that some sRGB colour falls in.

    Args:
        grid: cell side in raw Lab units (10: Zhang et al.'s 313 bins).
        levels: sRGB levels per channel sampled (64: 262,144 colours; every cell of side 10 is hit).

    Returns:
        ``Q x 2`` float32 tensor of normalised ab (``ab / 110``), in row-major cell order (a, then b).
    """
    v = torch.linspace(0, 1, levels)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].double()  # 2 x P raw
    cells = torch.unique(torch.round(ab / grid).long().t(), dim=0)  # sorted: row-major, deterministic
    return (cells.double() * grid / AB_SCALE).float()


class ABBins(nn.Module):
    """The quantised a*b* gamut with the training data's colour prior and rebalancing weights.

    Buffers (saved in a ``state_dict``): ``centers`` ``Q x 2`` (normalised ab), ``prior`` ``Q`` (sums to 1;
    uniform until :meth:`fit`), ``weights`` ``Q`` (``E_prior[w] = 1``), ``fitted`` (0/1 scalar).

    Args:
        grid: cell side in raw Lab units (the bins are :func:`gamut_centers`).
    """

    centers: torch.Tensor
    prior: torch.Tensor
    weights: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, grid: float = GRID):
        super().__init__()
        centers = gamut_centers(grid)
        q = centers.shape[0]
        self.grid = grid
        self.register_buffer("centers", centers.clone())
        self.register_buffer("prior", torch.full((q,), 1.0 / q))
        self.register_buffer("weights", torch.ones(q))
        self.register_buffer("fitted", torch.tensor(0.0))

    @property
    def n_bins(self) -> int:
        """Q, the number of bins."""
        return self.centers.shape[0]

    def extra_repr(self) -> str:
        return f"Q={self.n_bins}, grid={self.grid:g}, fitted={bool(self.fitted)}"

    def nearest(self, ab: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest bins of every pixel.

        Args:
            ab: ``N x 2 x H x W`` float, normalised ab.
            k: neighbours.

        Returns:
            ``(idx, d2)``: ``N x k x H x W`` int64 bin indices (nearest first) and their squared distances
            in raw Lab units (float32).
        """
        n, _, h, w = ab.shape
        x = ab.float().permute(0, 2, 3, 1).reshape(-1, 2) * AB_SCALE
        c = self.centers.float() * AB_SCALE
        d2 = (x.pow(2).sum(1, keepdim=True) - 2 * x @ c.t() + c.pow(2).sum(1)[None]).clamp_min_(0)
        d2k, idx = torch.topk(d2, k, dim=1, largest=False)
        return (idx.view(n, h, w, k).permute(0, 3, 1, 2), d2k.view(n, h, w, k).permute(0, 3, 1, 2))

    @torch.no_grad()
    def fit(self, ab_batches: Iterable[torch.Tensor]) -> None:
        """Set the prior and the rebalancing weights from the training pixels (Zhang et al. eq. 4).

        Args:
            ab_batches: ``N x 2 x H x W`` normalised ab batches of the TRAINING split (all of it: the counts
                are exact, so the result does not depend on batching or order).

        Raises:
            ValueError: no pixels.
        """
        counts = torch.zeros(self.n_bins, dtype=torch.float64)
        for ab in ab_batches:
            idx, _ = self.nearest(ab.to(self.centers.device))
            counts += torch.bincount(idx.flatten().cpu(), minlength=self.n_bins).double()
        if counts.sum() == 0:
            raise ValueError("ABBins.fit: no training pixels")
        c = self.centers.double().cpu() * AB_SCALE
        smooth = torch.exp(-torch.cdist(c, c).pow(2) / (2 * PRIOR_SIGMA**2)) @ (counts / counts.sum())
        prior = smooth / smooth.sum()
        w = 1.0 / ((1 - PRIOR_LAMBDA) * prior + PRIOR_LAMBDA / self.n_bins)
        w = w / (prior * w).sum()
        self.prior.copy_(prior.float())
        self.weights.copy_(w.float())
        self.fitted.fill_(1.0)

    def annealed_mean(self, logits: torch.Tensor, T: float | torch.Tensor = ANNEALED_T) -> torch.Tensor:
        """Annealed mean (Zhang et al. eq. 5): ``sum_q softmax(z / T)_q * c_q``; differentiable.

        Args:
            logits: ``N x Q x H x W`` (any float dtype; computed in float32).
            T: temperature > 0 (1: the mean of the prediction; towards 0: its mode).

        Returns:
            ``N x 2 x H x W`` float32 normalised ab, inside the centres' convex hull (so within [-1, 1]).
        """
        prob = torch.softmax(logits.float() / T, dim=1)
        return torch.einsum("nqhw,qc->nchw", prob, self.centers.float())


def rebalanced_cross_entropy(logits: torch.Tensor, ab: torch.Tensor, centers: torch.Tensor,
                             weights: torch.Tensor | None) -> torch.Tensor:
    """Soft-encoded multinomial cross-entropy with class rebalancing (Zhang et al. eq. 2).

    ``mean_pixels( w(nearest bin) * sum_q -t_q log softmax(z)_q )`` with ``t`` the target's soft encoding
    (its 5 nearest centres, Gaussian sigma 5 Lab units). Coarser logits (a head at stride s) get the target
    average-pooled to their size first.

    Args:
        logits: ``N x Q x h x w`` float (any dtype).
        ab: ``N x 2 x H x W`` float normalised ab target.
        centers: ``Q x 2`` normalised bin centres (:attr:`ABBins.centers`).
        weights: ``Q`` rebalancing weights (:attr:`ABBins.weights`), or None for the plain soft CE.

    Returns:
        A scalar float32 tensor (nats per pixel, weighted).

    Raises:
        ValueError: ``logits`` has another number of classes than ``centers``.
    """
    if logits.shape[1] != centers.shape[0]:
        raise ValueError(f"rebalanced_cross_entropy: {logits.shape[1]} logits for {centers.shape[0]} bins")
    if logits.shape[-2:] != ab.shape[-2:]:
        ab = F.adaptive_avg_pool2d(ab.float(), (logits.shape[-2], logits.shape[-1]))
    with torch.no_grad():
        x = ab.float().permute(0, 2, 3, 1).reshape(-1, 2) * AB_SCALE
        c = centers.float() * AB_SCALE
        d2 = (x.pow(2).sum(1, keepdim=True) - 2 * x @ c.t() + c.pow(2).sum(1)[None]).clamp_min_(0)
        d2k, idx = torch.topk(d2, SOFT_K, dim=1, largest=False)
        soft = torch.softmax(-d2k / (2 * SOFT_SIGMA**2), dim=1)
    logp = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, centers.shape[0])
    ce = -(logp.gather(1, idx) * soft).sum(1)
    if weights is not None:
        ce = ce * weights.float()[idx[:, 0]]
    return ce.mean()
