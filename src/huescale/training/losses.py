"""Losses by name, each with its weight: the generator objective of every training phase.

A phase's ``losses`` parameter maps registered names to weights, e.g. the
adversarial phase of pix2pix (Isola et al. 2017) as the source documents train
it (``docs/sources.md``: Brescia et al., Singh et al.: lambda_L1 = 100)::

    train:
      losses: {l1: 100, gan: 1}
      gan_mode: lsgan

Adding a loss is one registered class here plus a params entry (BasicSR's
pattern: ``@register("name")`` on the class, the weight beside the name in the
config). ``gan`` is the adversarial term; the Trainer computes it with the
discriminator (:class:`GANLoss`). Every other name is a reconstruction term,
built by :func:`build_objective`; unknown names fail there, at start-up, with
the list of known ones.

A loss is an ``nn.Module`` whose ``forward(inp: LossInput)`` returns a scalar
float tensor and whose ``metric`` attribute names the logged value
(``loss_G_<name>``; ``loss_G_L1`` for L1, as pix2pix names it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from huescale.abbins import rebalanced_cross_entropy
from huescale.training.tasks import Task

GAN = "gan"  # the adversarial term's name in a ``losses`` mapping (the Trainer owns it)
GAN_MODES = ("vanilla", "lsgan", "hinge")


class GANLoss(nn.Module):
    """GAN loss on discriminator logits, for real or fake targets (the pix2pix ``GANLoss``).

    Modes:
        ``vanilla``: binary cross-entropy with logits (Goodfellow et al. 2014).
        ``lsgan``: least squares, ``(D - 1)^2`` for real and ``D^2`` for fake (Mao et al. 2017;
            Brescia et al. use it for the colorizer's discriminator).
        ``hinge``: ``relu(1 - D)`` / ``relu(1 + D)`` for D; ``-D`` for the generator (Lim & Ye 2017).

    Call ``loss(logits, target_is_real, for_discriminator)``; logits are any
    shape (``N x 1 x h x w`` for PatchGAN), the result is a scalar float tensor.

    Raises:
        ValueError: for an unknown mode.
    """

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss {mode!r}; use one of {', '.join(GAN_MODES)}")
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


@dataclass
class LossInput:
    """What every reconstruction loss sees for one batch.

    Attributes:
        x: the network input (condition), e.g. normalised L ``N x 1 x h x w`` in [-1, 1].
        out: the generator output, normalised (ab ``N x 2``, L ``N x 1`` or Lab ``N x 3`` x H x W).
        target: the ground truth, same shape and units as ``out``.
        task: the task (its ``to_rgb`` converts to sRGB for losses in RGB).
        aux: extra generator outputs by name (e.g. ``logits`` of a classification head), else empty.
    """

    x: torch.Tensor
    out: torch.Tensor
    target: torch.Tensor
    task: Task
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    _rgb: tuple[torch.Tensor, torch.Tensor] | None = None

    def rgb(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fake, real)`` sRGB ``N x 3 x H x W`` in [0, 1] through the differentiable kornia conversion
        (computed once per batch, shared by the RGB terms); the gradient reaches the generator."""
        if self._rgb is None:
            x = self.x.float()
            self._rgb = (self.task.to_rgb(x, self.out), self.task.to_rgb(x, self.target))
        return self._rgb


@dataclass(frozen=True)
class LossContext:
    """What building a loss may need beside its weight.

    Attributes:
        task: the phase's task.
        vgg_weights: a VGG weights file for the ``vgg*`` content losses; "" = torchvision's cache
            (``$TORCH_HOME/hub/checkpoints``).
    """

    task: Task
    vgg_weights: str = ""


class Loss(nn.Module):
    """Base class of the registered reconstruction losses: ``forward(LossInput) -> scalar tensor``.

    Class attributes a loss declares (nothing outside this module names a loss):
        metric: the name its value is logged under (history CSV column, MLflow ``<phase>/<metric>``, report curve).
        needs_aux: the generator's auxiliary outputs it reads (checked against the model before training).
        validation: ``"objective"`` when the phase's best epoch must be chosen on the weighted objective rather
            than on validation L1 (a classification loss, whose best colours are not the L1-best ones).
    """

    metric: ClassVar[str] = ""
    needs_aux: ClassVar[tuple[str, ...]] = ()
    validation: ClassVar[str] = "l1"

    def __init__(self, context: LossContext):
        super().__init__()


_REGISTRY: dict[str, Callable[[LossContext], Loss]] = {}


def register(name: str) -> Callable:
    """Class (or factory) decorator: make a loss buildable by ``name`` in a ``losses`` mapping.

    Raises:
        KeyError: ``name`` is already registered (or is ``gan``).
    """

    def deco(cls):
        if name in _REGISTRY or name == GAN:
            raise KeyError(f"loss name {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> dict[str, str]:
    """Every loss name (``gan`` included) -> the first line of its docstring."""
    out = {GAN: "adversarial term: GANLoss(gan_mode) on the discriminator's logits (needs an adversarial phase)"}
    for name, cls in sorted(_REGISTRY.items()):
        out[name] = (cls.__doc__ or "").strip().splitlines()[0]
    return out


def logged_names() -> dict[str, str]:
    """Every value a phase may log (history CSV column) -> what it is, by the registry's names: each registered
    loss's ``metric`` (e.g. ``loss_G_CE`` -> ``ab_ce``), the adversarial terms and the total."""
    out = {"loss_G": "generator total", "loss_G_GAN": GAN, "loss_D": "discriminator",
           "loss_D_real": "discriminator, real", "loss_D_fake": "discriminator, fake"}
    for name, cls in _REGISTRY.items():
        out[getattr(cls, "metric", "") or f"loss_G_{name}"] = name
    return out


def aux_needed(name: str) -> tuple[str, ...]:
    """The generator auxiliary outputs loss ``name`` reads (``()`` for most; ``gan`` and unknown names too)."""
    return tuple(getattr(_REGISTRY.get(name), "needs_aux", ()))


def validation_metric(losses: dict[str, float]) -> str:
    """``"objective"`` if a loss weighted > 0 in ``losses`` declares it (:attr:`Loss.validation`), else ``"l1"``:
    what picks a phase's best epoch."""
    return "objective" if any(getattr(_REGISTRY.get(n), "validation", "l1") == "objective"
                              for n, w in losses.items() if w > 0) else "l1"


def check_names(losses: dict[str, float], where: str) -> None:
    """Fail for an unknown loss name or a negative weight, naming the dotted key and listing the known names.

    Raises:
        ValueError: the message names ``where.<name>``.
    """
    for name, weight in losses.items():
        if name != GAN and name not in _REGISTRY:
            raise ValueError(f"{where}.{name}: unknown loss; known losses: {', '.join(available())}")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"{where}.{name}: the weight must be a number >= 0, got {weight!r}")


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


# name -> (torchvision architecture, weights file in the torch hub cache, features[:cut], what it is)
VGG_LAYERS = {
    # the 7th conv of VGG16 is conv3_3 (features[14]); its ReLU is features[15] (Singh et al., with L1)
    "vgg16_conv7": ("vgg16", "vgg16-397923af.pth", 16, "VGG16 conv3_3 (7th conv), with L1 (Singh et al.)"),
    # the 13th (last) conv of VGG16 is conv5_3 (features[28]); ReLU features[29] (Singh et al., alone)
    "vgg16_conv13": ("vgg16", "vgg16-397923af.pth", 30, "VGG16 conv5_3 (13th conv), alone (Singh et al.)"),
    # SRGAN's phi_5,4: conv5_4 of VGG19 (features[34]) after its ReLU (Ledig et al. 2017; Brescia et al.)
    "vgg19": ("vgg19", "vgg19-dcbb9e9d.pth", 36, "VGG19 conv5_4, SRGAN's perceptual loss (Brescia et al.)"),
}


def vgg_weights_path(name: str, path: str | os.PathLike | None = None) -> Path:
    """Where the VGG weights for content loss ``name`` are: ``path`` if given, else torchvision's
    cache ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``).

    Raises:
        ValueError: unknown ``name``.
        FileNotFoundError: the file is missing; the message names it and says how to provide it.
    """
    if name not in VGG_LAYERS:
        raise ValueError(f"unknown content loss {name!r}; use one of {', '.join(VGG_LAYERS)}")
    _, fname, _, _ = VGG_LAYERS[name]
    home = os.environ.get("TORCH_HOME")  # as documented, even where another library moved torch.hub's folder
    hub = Path(home).expanduser() / "hub" if home else Path(torch.hub.get_dir())
    p = Path(path).expanduser() if path else hub / "checkpoints" / fname
    if not p.is_file():
        raise FileNotFoundError(
            f"content loss {name}: VGG weights {p} not found. Copy torchvision's {fname} "
            f"(https://download.pytorch.org/models/{fname}) there, set TORCH_HOME, or give the file "
            "as train.vgg_weights; or set the loss's weight to 0")
    return p


class VGGContentLoss(Loss):
    """VGG feature-map content loss (SRGAN, Ledig et al. 2017; Brescia et al., Singh et al.).

    ``mean((phi(fake) - phi(real))^2)`` over the feature map ``phi`` after the
    ReLU of one conv layer of an ImageNet VGG (Singh et al. eq. 4; Brescia et al.'s
    perceptual loss): ``vgg16_conv7`` (conv3_3, with L1, lambda1 = 100,
    lambda2 = 10), ``vgg16_conv13`` (conv5_3, alone) or ``vgg19`` (conv5_4,
    SRGAN's phi_5,4, with a 1e-3 adversarial weight). The VGG is frozen (no
    gradient to its weights, eval mode) and sees sRGB with the ImageNet
    mean/std normalisation torchvision's weights expect; H, W >= 16 for conv13/vgg19.

    The weights are loaded when the loss is built, so a missing file fails at
    start-up (see :func:`vgg_weights_path`), never mid-run.

    Raises:
        FileNotFoundError: missing weights; ValueError: unknown name or a file that is not a VGG state dict.
    """

    def __init__(self, name: str, weights: str | os.PathLike | None = None):
        nn.Module.__init__(self)
        from torchvision.models.vgg import cfgs, make_layers  # lazy: torchvision ~4 s, only for the VGG loss

        path = vgg_weights_path(name, weights)
        arch, _, cut, _ = VGG_LAYERS[name]
        features = make_layers(cfgs["D" if arch == "vgg16" else "E"])  # the conv part only (no 120M-weight classifier)
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")})
        except Exception as exc:  # noqa: BLE001 - a wrong or corrupt file
            raise ValueError(f"content loss {name}: {path} is not a torchvision {arch} state dict ({exc})") from None
        self.name = name
        self.metric = f"loss_G_{name}"  # type: ignore[misc]
        self.features = features[:cut].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGContentLoss:
        super().train(mode)
        self.features.eval()  # frozen: never in training mode
        return self

    def distance(self, fake_rgb: torch.Tensor, real_rgb: torch.Tensor) -> torch.Tensor:
        """The content loss of two sRGB batches ``N x 3 x H x W`` in [0, 1]; scalar float tensor."""
        f = self.features((fake_rgb.float() - self.mean) / self.std)
        with torch.no_grad():
            r = self.features((real_rgb.float() - self.mean) / self.std)
        return F.mse_loss(f.float(), r.float())

    def forward(self, inp: LossInput) -> torch.Tensor:  # type: ignore[override]
        return self.distance(*inp.rgb())


for _name, (_, _, _, _what) in VGG_LAYERS.items():
    def _factory(context: LossContext, _n: str = _name) -> VGGContentLoss:
        return VGGContentLoss(_n, context.vgg_weights or None)

    _factory.__doc__ = f"VGG content loss on sRGB: {_what}."
    register(_name)(_factory)


class GeneratorObjective(nn.Module):
    """The weighted sum of a phase's reconstruction terms (every name of ``losses`` but ``gan``).

    ``total = sum_i w_i * loss_i`` in the order of the mapping; terms with weight 0 are not built,
    except L1, which is always computed and logged as ``loss_G_L1`` (it is also the validation
    metric) and only added when its weight is > 0.

    Call ``objective(x, out, target, aux)`` -> dict of scalar tensors: each term's unweighted
    value under its ``metric`` name, and ``total`` (the weighted sum; None-free: at least one term).

    Args:
        losses: name -> weight, e.g. ``{"l1": 100, "gan": 1}`` (``gan`` is skipped here).
        context: the task and loss options.

    Raises:
        ValueError: an unknown name, a negative weight, or no term at all (names the known losses).
        FileNotFoundError: weights of a VGG loss missing (at construction, so before any step).
    """

    def __init__(self, losses: dict[str, float], context: LossContext, where: str = "losses"):
        super().__init__()
        check_names(losses, where)
        self.task = context.task
        self.weights = {n: float(w) for n, w in losses.items() if n != GAN and w > 0}
        if not self.weights:
            raise ValueError(f"{where}: no reconstruction loss with a weight > 0 (e.g. l1: 1); "
                             f"known losses: {', '.join(available())}")
        self.terms = nn.ModuleDict({n: _REGISTRY[n](context) for n in self.weights})
        self.monitor = L1Loss(context)

    def forward(self, x: torch.Tensor, out: torch.Tensor, target: torch.Tensor,
                aux: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        inp = LossInput(x, out.float(), target.float(), self.task, aux or {})
        values: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for name, loss in self.terms.items():
            v = loss(inp)
            values[loss.metric] = v
            total = self.weights[name] * v if total is None else total + self.weights[name] * v
        if L1Loss.metric not in values:
            values[L1Loss.metric] = self.monitor(inp).detach()
        values["total"] = total  # type: ignore[assignment]
        return values
