"""Losses: the GAN objectives behind one call, L1, cosine distance and VGG content losses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class GANLoss(nn.Module):
    """GAN loss on discriminator logits, for real or fake targets (the pix2pix ``GANLoss``).

    Modes:
        ``vanilla``: binary cross-entropy with logits (Goodfellow et al. 2014; seed 001).
        ``lsgan``: least squares, ``(D - 1)^2`` for real and ``D^2`` for fake (Mao et al.
            2017; seed 002_fb95d62aba45078e.txt uses it for the colorizer's discriminator).
        ``hinge``: ``relu(1 - D)`` / ``relu(1 + D)`` for D; ``-D`` for the generator.

    Call ``loss(logits, target_is_real, for_discriminator)``; logits are any
    shape (``N x 1 x h x w`` for PatchGAN), the result is a scalar float tensor.

    Raises:
        ValueError: for an unknown mode.
    """

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge"):
            raise ValueError(f"unknown GAN loss {mode!r}; use vanilla, lsgan or hinge")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        logits = logits.float()
        if self.mode == "vanilla":
            target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.mode == "lsgan":
            return (logits - 1).pow(2).mean() if target_is_real else logits.pow(2).mean()
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1 - logits).mean() if target_is_real else F.relu(1 + logits).mean()


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in network units ([-1, 1] normalised L or ab); scalar float tensor."""
    return F.l1_loss(pred.float(), target.float())


def cosine_distance(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean cosine distance ``1 - cos(pred, target)`` between per-pixel channel vectors (seed 003_b11eaea04742b62b.txt).

    Seed 003 trains its generator "to minimize the cosine distance between
    predicted and the original image", with L1 (section 4.2). For ab that is
    the angle between chroma vectors, i.e. a hue error independent of
    saturation.

    Args:
        pred, target: ``N x C x H x W`` float tensors (normalised ab or Lab).
        eps: floor of the vector norms (gray pixels have ab ~ 0).

    Returns:
        Scalar float tensor in [0, 2].
    """
    return (1.0 - F.cosine_similarity(pred.float(), target.float(), dim=1, eps=eps)).mean()


# name -> (torchvision constructor, weights file in the torch hub cache, features[:cut], source)
VGG_LAYERS = {
    # the 7th conv of VGG16 is conv3_3 (features[14]); its ReLU is features[15] (seed 004, with L1)
    "vgg16_conv7": ("vgg16", "vgg16-397923af.pth", 16, "seed 004_8015dae742fd526e.txt: 7th conv, with L1"),
    # the 13th (last) conv of VGG16 is conv5_3 (features[28]); ReLU features[29] (seed 004, alone)
    "vgg16_conv13": ("vgg16", "vgg16-397923af.pth", 30, "seed 004_8015dae742fd526e.txt: 13th conv, alone"),
    # SRGAN's phi_5,4: conv5_4 of VGG19 (features[34]) after its ReLU (seed 002, Ledig et al. 2017)
    "vgg19": ("vgg19", "vgg19-dcbb9e9d.pth", 36, "seed 002_fb95d62aba45078e.txt: VGG19 perceptual (SRGAN)"),
}
CONTENT_LOSSES = ("none", *VGG_LAYERS)


def vgg_weights_path(name: str, path: str | os.PathLike | None = None) -> Path:
    """Where the VGG weights for content loss ``name`` are: ``path`` if given, else torchvision's
    cache ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``).

    Raises:
        ValueError: unknown ``name``.
        FileNotFoundError: the file is missing; the message names it and says how to provide it.
    """
    if name not in VGG_LAYERS:
        raise ValueError(f"unknown content loss {name!r}; use one of {', '.join(CONTENT_LOSSES)}")
    arch, fname, _, _ = VGG_LAYERS[name]
    p = Path(path).expanduser() if path else Path(torch.hub.get_dir()) / "checkpoints" / fname
    if not p.is_file():
        raise FileNotFoundError(
            f"content loss {name}: VGG weights {p} not found. Copy torchvision's {fname} "
            f"(https://download.pytorch.org/models/{fname}) there, set TORCH_HOME, or give the file "
            "as the content loss 'weights' parameter; or set the content loss to none")
    return p


class VGGContentLoss(nn.Module):
    """VGG feature-map content loss (SRGAN, Ledig et al. 2017; seeds 002 and 004).

    ``mean((phi(fake) - phi(real))^2)`` over the feature map ``phi`` after the
    ReLU of one conv layer of an ImageNet VGG (seed 004 eq. 4; seed 002's
    perceptual loss): ``vgg16_conv7`` (conv3_3, seed 004 with L1,
    lambda1 = 100, lambda2 = 10), ``vgg16_conv13`` (conv5_3, seed 004 alone)
    or ``vgg19`` (conv5_4, SRGAN's phi_5,4, seed 002 with 1e-3 adversarial).
    The VGG is frozen (no gradient to its weights, eval mode) and sees RGB with
    the ImageNet mean/std normalisation torchvision's weights expect.

    The weights are loaded when the loss is built, so a missing file fails at
    start-up (see :func:`vgg_weights_path`), never mid-run.

    Call ``loss(fake_rgb, real_rgb)``: ``N x 3 x H x W`` float sRGB in [0, 1]
    (H, W >= 16 for conv13/vgg19); returns a scalar float tensor.

    Raises:
        FileNotFoundError: missing weights; ValueError: unknown name or a file that is not a VGG state dict.
    """

    def __init__(self, name: str, weights: str | os.PathLike | None = None):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        path = vgg_weights_path(name, weights)
        arch, _, cut, _ = VGG_LAYERS[name]
        features = make_layers(cfgs["D" if arch == "vgg16" else "E"])  # the conv part only (no 120M-weight classifier)
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")})
        except Exception as exc:  # noqa: BLE001 - a wrong or corrupt file
            raise ValueError(f"content loss {name}: {path} is not a torchvision {arch} state dict ({exc})") from None
        self.name = name
        self.features = features[:cut].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "VGGContentLoss":
        super().train(mode)
        self.features.eval()  # frozen: never in training mode
        return self

    def forward(self, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> torch.Tensor:
        f = self.features((fake_rgb.float() - self.mean) / self.std)
        with torch.no_grad():
            r = self.features((real_rgb.float() - self.mean) / self.std)
        return F.mse_loss(f.float(), r.float())


class GeneratorObjective(nn.Module):
    """The generator's reconstruction terms beside the GAN loss, each with its weight.

    ``total = w_l1 * L1 + lambda_content * content(RGB) + lambda_cosine * cosine + lambda_rgb * L1(RGB)``
    with ``w_l1 = lambda_l1`` in the adversarial phase (pix2pix, seeds 002/004:
    100) and 1 in L1 pre-training (seed 004). Terms with weight 0 are skipped.

    - L1 in network units (normalised L/ab/Lab), :func:`l1_loss`.
    - content: :class:`VGGContentLoss` on RGB (seed 004: ``vgg16_conv7`` with
      lambda_l1 = 100 and lambda_content = 10; ``vgg16_conv13`` alone; seed
      002: ``vgg19`` with lambda_l1 = 0 and a 1e-3 adversarial weight).
    - cosine: :func:`cosine_distance` (seed 003, with L1).
    - rgb: L1 between the RGB images (the joint model's loss in RGB, seeds 000/004).

    RGB images are built by ``to_rgb(x, out)`` (the task's converter, through
    the differentiable kornia Lab -> sRGB of :mod:`huescale.color`), so the
    gradient of the RGB terms reaches the generator (seed 004 blames a broken
    RGB gradient for its failed joint model).

    Call ``objective(x, out, target, adversarial)`` -> dict of scalar tensors:
    ``loss_G_L1`` (unweighted), one entry per active extra term
    (``loss_G_content``, ``loss_G_cos``, ``loss_G_rgb``; unweighted) and
    ``total`` (weighted sum).

    Raises:
        ValueError: unknown content loss, negative weights, or RGB terms without ``to_rgb``.
        FileNotFoundError: content loss weights missing (at construction).
    """

    def __init__(self, lambda_l1: float = 100.0, content: str = "none", lambda_content: float = 0.0,
                 lambda_cosine: float = 0.0, lambda_rgb: float = 0.0, content_weights: str | None = None,
                 to_rgb: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        if content not in CONTENT_LOSSES:
            raise ValueError(f"unknown content loss {content!r}; use one of {', '.join(CONTENT_LOSSES)}")
        if min(lambda_l1, lambda_content, lambda_cosine, lambda_rgb) < 0:
            raise ValueError("loss weights (lambda_l1, lambda_content, lambda_cosine, lambda_rgb) must be >= 0")
        self.lambda_l1, self.lambda_content = lambda_l1, lambda_content if content != "none" else 0.0
        self.lambda_cosine, self.lambda_rgb = lambda_cosine, lambda_rgb
        self.content = VGGContentLoss(content, content_weights) if self.lambda_content > 0 else None
        if (self.content is not None or lambda_rgb > 0) and to_rgb is None:
            raise ValueError("content and RGB losses need the task's to_rgb converter")
        self.to_rgb = to_rgb

    @property
    def extra(self) -> bool:
        """Whether any term besides L1 is active."""
        return self.content is not None or self.lambda_cosine > 0 or self.lambda_rgb > 0

    def forward(self, x: torch.Tensor, out: torch.Tensor, target: torch.Tensor,
                adversarial: bool = True) -> dict[str, torch.Tensor]:
        out, target = out.float(), target.float()
        terms = {"loss_G_L1": l1_loss(out, target)}
        total = (self.lambda_l1 if adversarial else 1.0) * terms["loss_G_L1"]
        if self.lambda_cosine > 0:
            terms["loss_G_cos"] = cosine_distance(out, target)
            total = total + self.lambda_cosine * terms["loss_G_cos"]
        if self.content is not None or self.lambda_rgb > 0:
            fake_rgb, real_rgb = self.to_rgb(x.float(), out), self.to_rgb(x.float(), target)
            if self.content is not None:
                terms["loss_G_content"] = self.content(fake_rgb, real_rgb)
                total = total + self.lambda_content * terms["loss_G_content"]
            if self.lambda_rgb > 0:
                terms["loss_G_rgb"] = l1_loss(fake_rgb, real_rgb)
                total = total + self.lambda_rgb * terms["loss_G_rgb"]
        terms["total"] = total
        return terms
