"""The VGG content (perceptual) losses ``vgg16_conv7``, ``vgg16_conv13`` and ``vgg19``, and where their
weights are found; registered in :mod:`huescale.training.loss_registry`."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from huescale.training.loss_registry import Loss, LossContext, LossInput, register

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
