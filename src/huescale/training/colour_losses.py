"""The pixel and colour reconstruction losses: L1, cosine, L1 in sRGB, the ab-classification cross-entropy and
its regression head, colourfulness (each registered by name in :mod:`huescale.training.loss_registry`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from huescale.abbins import rebalanced_cross_entropy
from huescale.training.loss_registry import Loss, LossInput, register


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in network units ([-1, 1] normalised L or ab); scalar float tensor."""
    return F.l1_loss(pred.float(), target.float())


@register("l1")
class L1Loss(Loss):
    """L1 between output and target in network units (pix2pix; lambda_L1 = 100 in the source documents)."""

    metric = "loss_G_L1"

    def forward(self, inp: LossInput) -> torch.Tensor:
        return l1_loss(inp.out, inp.target)


def cosine_distance(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean cosine distance ``1 - cos(pred, target)`` between per-pixel channel vectors.

    The CIFAR-10 cGAN report (``docs/sources.md``) trains its generator "to minimize the
    cosine distance between predicted and the original image", with L1 (section 4.2).
    For ab that is the angle between chroma vectors, a hue error independent of saturation.

    Args:
        pred, target: ``N x C x H x W`` float tensors (normalised ab or Lab).
        eps: floor of the vector norms (gray pixels have ab ~ 0).

    Returns:
        Scalar float tensor in [0, 2].
    """
    return (1.0 - F.cosine_similarity(pred.float(), target.float(), dim=1, eps=eps)).mean()


@register("cosine")
class CosineLoss(Loss):
    """Cosine distance between output and target chroma vectors (the CIFAR-10 cGAN report, with L1)."""

    metric = "loss_G_cosine"

    def forward(self, inp: LossInput) -> torch.Tensor:
        return cosine_distance(inp.out, inp.target)


@register("rgb_l1")
class RGBL1Loss(Loss):
    """L1 between the sRGB images through the differentiable Lab -> sRGB (the joint model's loss in RGB)."""

    metric = "loss_G_rgb_l1"

    def forward(self, inp: LossInput) -> torch.Tensor:
        fake, real = inp.rgb()
        return l1_loss(fake, real)


def _aux(inp: LossInput, name: str, loss: str) -> torch.Tensor:
    if name not in inp.aux:
        raise ValueError(f"loss {loss}: the generator has no {name!r} output; it needs a generator with an "
                         "ab-classification head (model.colorizer.name: semantic or colornet)")
    return inp.aux[name]


@register("ab_ce")
class RebalancedCELoss(Loss):
    """Rebalanced soft cross-entropy over a*b* bins (Zhang, Isola & Efros 2016), for colornet's class head.

    Reads the generator's auxiliary outputs ``logits`` (``N x Q x h x w``), ``bin_centers`` and
    ``bin_weights`` (:func:`huescale.abbins.rebalanced_cross_entropy`); the target is normalised ab. The
    rebalancing makes rare saturated colours count as much as the common desaturated ones, which is what
    keeps the prediction from the mean-seeking sepia of L1 regression.

    Raises:
        ValueError (at the first batch): a generator without those outputs.
    """

    metric = "loss_G_CE"
    needs_aux = ("logits", "bin_centers", "bin_weights")
    validation = "objective"

    def forward(self, inp: LossInput) -> torch.Tensor:
        return rebalanced_cross_entropy(_aux(inp, "logits", "ab_ce"), inp.target, _aux(inp, "bin_centers", "ab_ce"),
                                        _aux(inp, "bin_weights", "ab_ce"))


@register("reg_l1")
class HeadL1Loss(Loss):
    """L1 of colornet's regression head against the target ab average-pooled to the head's size (Zhang et al.'s
    hybrid of classification and regression heads)."""

    metric = "loss_G_reg_L1"
    needs_aux = ("reg",)

    def forward(self, inp: LossInput) -> torch.Tensor:
        reg = _aux(inp, "reg", "reg_l1")
        target = inp.target if reg.shape[-2:] == inp.target.shape[-2:] else \
            F.adaptive_avg_pool2d(inp.target, reg.shape[-2:])
        return l1_loss(reg, target)


def colourfulness_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image colourfulness of Hasler & Suesstrunk 2003 on ``N x 3 x H x W`` sRGB in [0, 1], in 8-bit units
    (the same as :func:`huescale.metrics.colorfulness`, differentiable): ``N`` float values, 0 for gray."""
    x = rgb.float() * 255.0
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    std = torch.sqrt(rg.var((1, 2), unbiased=False) + yb.var((1, 2), unbiased=False) + 1e-6)
    mean = torch.sqrt(rg.mean((1, 2)) ** 2 + yb.mean((1, 2)) ** 2 + 1e-6)
    return std + 0.3 * mean


@register("colourfulness")
class ColourfulnessLoss(Loss):
    """DDColor's colourfulness loss (Kang et al. 2023, eq. 7): ``1 - M(output) / 100`` with ``M`` the Hasler &
    Suesstrunk colourfulness of the sRGB output: it pays the generator for a committed, saturated guess where
    the classification and L1 terms settle for the desaturated mean. DDColor weighs it 0.5 beside its
    perceptual and GAN terms; an ablation row here."""

    metric = "loss_G_colourfulness"

    def forward(self, inp: LossInput) -> torch.Tensor:
        fake, _ = inp.rgb()
        return (1.0 - colourfulness_rgb(fake) / 100.0).mean()
